import type {Definition} from './job-definition.js'
import {jobOutputPath} from './job-output-path.js'
import type {JobRow, JobStore} from './store.js'

/**
 * An output directory belongs to exactly one job: the id of a job (any status, finished ones included)
 * other than `exceptId` whose output_path is `path`.
 */
export function outputPathOwner(store: Pick<JobStore, 'database'>, path: string, exceptId?: string): string | undefined {
  const row = store.database.prepare('SELECT id FROM jobs WHERE output_path = ? AND id IS NOT ? LIMIT 1').get(path, exceptId ?? null) as {id: string} | undefined
  return row?.id
}

/**
 * Before an attempt clears and fills its output directory: when another job owns that path (a job of the
 * same name was given it while this one sat failed, or a store of an older build shared it), this job gets
 * a fresh path — recorded in the row and its definition — so it never deletes another job's outputs.
 */
export function ownOutputPath(store: JobStore, outputDir: string, row: JobRow, definition: Definition): Definition {
  const owner = outputPathOwner(store, row.output_path, row.id)
  if (owner === undefined) return definition
  const path = jobOutputPath(store, outputDir, row.name, row.id)
  const moved: Definition = {...definition, settings: {...definition.settings, outputDir: path}}
  store.transition(row.id, row.status, `output directory ${row.output_path} belongs to job ${owner}: this job now writes to ${path}`, {definition_json: JSON.stringify(moved), output_path: path})
  return moved
}
