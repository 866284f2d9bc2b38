import {existsSync} from 'node:fs'
import {readdir, rm} from 'node:fs/promises'
import {join} from 'node:path'

import {mapForeignError} from '../errors/map-foreign-error.js'
import {claimDir, undoClaim} from './claim-files.js'
import type {ClaimPlanner} from './claim-planner.js'
import {readClaimRecord} from './claim-record.js'
import type {DaemonLogFn} from './daemon-pieces.js'
import type {Layout} from './layout.js'
import type {ClaimSettler} from './settle-claim.js'
import type {JobStore} from './store.js'

export interface RecoveryContext {
  store: JobStore
  layout: Layout
  planner: ClaimPlanner
  settler: ClaimSettler
  /** A bookkeeping path as the held descriptors reach it. */
  safe: (real: string) => string
  log: DaemonLogFn
}

/**
 * Crash recovery at start: running jobs are re-queued (partial outputs removed); a claim the store does
 * not know yet is planned again (or put back when its main file never arrived); a claim whose jobs all
 * finished is settled.
 */
export async function recoverClaims(ctx: RecoveryContext): Promise<void> {
  const {layout, log, safe, store} = ctx
  for (const row of store.unfinished()) {
    if (row.status !== 'running') continue
    await rm(row.output_path, {force: true, recursive: true})
    store.transition(row.id, 'queued', 'recovered after an unclean stop: re-queued, partial outputs removed')
    store.endOpenAttempts(row.id, 'interrupted')
    log('warn', 'job:recovered', {file: row.source_path, job: row.id}, 're-queued after an unclean stop')
  }
  // A refused processing directory is not read: its claims wait until it is fixed and the daemon restarted.
  const claims = await Promise.resolve()
    .then(() => readdir(safe(layout.processing)))
    .catch((error: unknown) => {
      log('error', 'recover:skipped', {dir: layout.processing}, mapForeignError(error).message)
      return [] as string[]
    })
  for (const id of claims) {
    const dir = claimDir(layout.processing, id)
    if (store.jobsOfIntake(id).length > 0) {
      await ctx.settler.maybeSettle(id)
      continue
    }
    const record = await readClaimRecord(safe(dir), id)
    if (!record) {
      await rm(safe(dir), {force: true, recursive: true})
    } else if (existsSync(join(safe(dir), record.main))) {
      // Claimed (renamed) but the daemon died before recording the jobs: adopt it.
      log('warn', 'job:adopted', {file: record.main, intake: id}, 'claimed before an unclean stop')
      await ctx.planner.plan(dir, record)
    } else {
      await undoClaim(layout.inbox, safe(dir), record)
      log('warn', 'file:unclaimed', {file: record.main, intake: id}, 'claim interrupted before its main file moved: put back')
    }
  }
}
