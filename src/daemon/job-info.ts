import {type ErrorCode, type H2KError} from '@hyper2kvm/plugin-api'
import {ERROR_CATALOG} from '@hyper2kvm/plugin-api/host'
import type {ErrorInfo, JobInfo} from './daemon-events.js'
import {type Definition, definitionOf, fileType} from './job-definition.js'
import type {JobRow} from './store.js'

/** A job as the daemon's listeners see it (daemon-events.ts). */
export function jobInfo(row: JobRow, definition: Definition = definitionOf(row)): JobInfo {
  return {
    fileType: fileType(row.source_path),
    filename: row.source_path,
    id: row.id,
    intakeId: row.intake_id ?? row.id,
    name: row.name,
    origin: row.origin ?? 'drop',
    sizeBytes: definition.size,
    ...(row.schedule_id ? {scheduleId: row.schedule_id} : {}),
  }
}

/** An error as listeners see it. */
export function errorInfo(error: {code: string; message: string; phase?: string; stage?: string; suggestions?: readonly string[]}): ErrorInfo {
  const entry = ERROR_CATALOG[error.code as ErrorCode] as (typeof ERROR_CATALOG)[ErrorCode] | undefined
  const suggestion = error.suggestions?.[0] ?? entry?.suggestions[0]
  return {code: error.code, message: error.message, permanent: entry?.permanent ?? false, ...(error.phase ? {phase: error.phase} : {}), ...(error.stage ? {stage: error.stage} : {}), ...(suggestion ? {suggestion} : {})}
}

/** The error as the store keeps it (with the stack when verbose >= 2, for the error file). */
export function errorToStore(error: H2KError, verbose: number): Record<string, unknown> {
  return {...error.toJSON(), ...(verbose >= 2 && error.stack ? {stack: error.stack} : {})}
}
