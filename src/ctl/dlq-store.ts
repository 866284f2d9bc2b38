import {JobStore} from '../daemon/store.js'
import {daemonOutputDir} from './daemon-flags.js'

/**
 * The `dlq` commands work on the daemon's job store directly (output_dir/.daemon/jobs.db), like `ctl jobs`:
 * reads open it read-only; retry and purge open it for writing (WAL with a busy timeout: a running daemon
 * and the command take turns; the daemon starts a re-queued job at its next intake scan). They do not need
 * the daemon's API.
 */
export async function openDlqStore(flags: {'output-dir'?: string; config?: string}, write: boolean): Promise<JobStore> {
  const outputDir = await daemonOutputDir(flags)
  return write ? JobStore.openExisting(outputDir) : JobStore.open(outputDir, {readonly: true})
}

/** Said in the --help of every dlq command. */
export const DLQ_STORE_NOTE =
  'It works on the job store (output_dir/.daemon/jobs.db) directly, whether the daemon runs or not; a running daemon starts a re-queued job at its next intake scan. Changes made here are not announced to webhooks or event streams (the API does that).'
