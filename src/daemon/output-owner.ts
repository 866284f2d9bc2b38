import type {Definition} from './job-definition.js'
import {jobOutputPath} from './job-output-path.js'
import type {JobRow, JobStore} from './store.js'

/**
 * Before an attempt clears and fills its output directory: when another job owns that path (a job of the
 * same name was given it while this one sat failed, or a store of an older build shared it), this job gets
 * a fresh path — recorded in the row and its definition — so it never deletes another job's outputs.
 */
export function ownOutputPath(store: JobStore, outputDir: string, row: JobRow, definition: Definition): Definition {
  const owner = store.outputPathOwner(row.output_path, row.id)
  if (owner === undefined) return definition
  const path = jobOutputPath(store, outputDir, row.name, row.id)
  const moved: Definition = {...definition, settings: {...definition.settings, outputDir: path}}
  store.transition(row.id, row.status, `output directory ${row.output_path} belongs to job ${owner}: this job now writes to ${path}`, {definition_json: JSON.stringify(moved), output_path: path})
  return moved
}
