import {lstatSync, realpathSync} from 'node:fs'

import {H2KError} from '@hyper2kvm/plugin-api'
import {relativeInside} from '@hyper2kvm/plugin-api/host'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {realOrSelf} from '../fs/real-or-self.js'
import {claimDir} from './claim-files.js'
import type {DaemonConfig} from './config.js'
import {definitionOf} from './job-definition.js'
import type {JobRow} from './store.js'

/**
 * What a dropped item may make the daemon read: files of its own claim, and files under the
 * configured allowed_input_dirs. Symlinks are followed before deciding, so a link dropped into the inbox
 * (or a job file naming /etc/shadow) cannot turn the daemon into a reader of any file its user can read.
 */
export async function checkInputAllowed(input: string, claim: string, allowedDirs: readonly string[]): Promise<void> {
  const real = await realOrSelf(input)
  const roots = [await realOrSelf(claim), ...(await Promise.all(allowedDirs.map(realOrSelf)))]
  if (roots.some((root) => relativeInside(root, real) !== undefined)) return
  // Where a symlink points is not said (nor recorded): the message names only what the item itself named.
  throw new H2KError('H2K_UNSAFE_PATH', `${input}${real === input ? '' : ' (a symbolic link, or a path through one)'} is outside what a dropped item may read: its own files${allowedDirs.length > 0 ? ` and ${allowedDirs.join(', ')}` : ''}.`, {
    details: {allowedInputDirs: allowedDirs, input},
    suggestions: ['Drop the disk itself (or put it in a subdirectory of the drop directory next to the job file), or add its directory to allowed_input_dirs in the daemon configuration.'],
  })
}

/**
 * The input of a recorded job, checked again right before an attempt starts and when it is retried: the
 * check at submit or claim time is long past (a queue, a window, a parent, a retry), and a directory on the
 * way may have been swapped for a symlink since. Its real path must still lie under the current
 * allowed_input_dirs or the job's own claim directory, be a regular file, and — for jobs without a claim
 * (API, schedules), whose recorded input IS the real path checked at submit — resolve to exactly that path.
 * Otherwise H2K_UNSAFE_PATH, naming only the recorded path, never where a link points.
 *
 * A window remains between this check and the loader's open (milliseconds); the loaders open the path
 * they are given. Synchronous on purpose: the service's retry() is synchronous, and these are a few
 * realpath/lstat calls on local paths.
 */
export function checkRecordedInput(row: Pick<JobRow, 'id' | 'intake_id'>, input: string, config: Pick<DaemonConfig, 'allowedInputDirs' | 'layout'>): void {
  let real: string
  try {
    real = realpathSync(input)
  } catch (error) {
    throw mapForeignError(error, {path: input})
  }
  const roots = [...(row.intake_id === null ? [] : [claimDir(config.layout.processing, row.intake_id)]), ...config.allowedInputDirs].map(realOrSelfSync)
  const inside = roots.some((root) => relativeInside(root, real) !== undefined)
  const moved = row.intake_id === null && real !== input
  if (!inside || moved || !lstatSync(real).isFile()) {
    throw new H2KError('H2K_UNSAFE_PATH', `The input of job ${row.id} (${input}) no longer resolves to the file checked when it was submitted: a directory on its path was replaced (by a symbolic link), or it now lies outside allowed_input_dirs${config.allowedInputDirs.length > 0 ? ` (${config.allowedInputDirs.join(', ')})` : ''}. Refused.`, {
      details: {id: row.id, input},
      suggestions: ['Put the disk back under allowed_input_dirs as a real file (no symbolic links on its path) and submit a new job.'],
    })
  }
}

function realOrSelfSync(path: string): string {
  try {
    return realpathSync(path)
  } catch {
    return path
  }
}

/**
 * checkRecordedInput() for a retry. Through the daemon (API) a job whose input moved is refused at once;
 * `dlq retry` on a store opened without the daemon has no configuration to check against (its service
 * answers H2K_USAGE for it): the re-queued job is checked when it starts (JobRunner.execute).
 */
export function checkRetriedInput(row: JobRow, config: () => Pick<DaemonConfig, 'allowedInputDirs' | 'layout'>): void {
  let cfg: Pick<DaemonConfig, 'allowedInputDirs' | 'layout'>
  try {
    cfg = config()
  } catch (error) {
    if (error instanceof H2KError && error.code === 'H2K_USAGE') return
    throw error
  }
  checkRecordedInput(row, definitionOf(row).settings.input, cfg)
}
