import {existsSync} from 'node:fs'
import {readdir, rm} from 'node:fs/promises'
import {join} from 'node:path'

import type {JobLeases} from '../cluster/job-leases.js'
import {storeNow} from '../cluster/store-clock.js'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {claimDir, undoClaim} from './claim-files.js'
import type {ClaimPlanner} from './claim-planner.js'
import {readClaimRecord} from './claim-record.js'
import type {DaemonLogFn} from './daemon-pieces.js'
import type {IntakeClaims} from './intake-claims.js'
import type {Layout} from './layout.js'
import type {ClaimSettler} from './settle-claim.js'
import type {JobStore} from './store.js'

export interface RecoveryContext {
  store: JobStore
  /** The intake claim rows: which claim directories are this node's to recover. */
  claims: IntakeClaims
  layout: Layout
  planner: ClaimPlanner
  settler: ClaimSettler
  /** A bookkeeping path as the held descriptors reach it. */
  safe: (real: string) => string
  log: DaemonLogFn
  /** This node's leases: the running jobs it may re-queue are its own (same node id) or expired ones. */
  leases: JobLeases
}

/**
 * Crash recovery at start: running jobs are re-queued (partial outputs removed); a claim the store does
 * not know yet is planned again (or put back when its main file never arrived); a claim whose jobs all
 * finished is settled. Only claims this node owns by their intake claim row, or adopts from a dead node,
 * are touched: a live node's claim in progress in a shared processing/ is never planned, put back or
 * settled by another.
 */
export async function recoverClaims(ctx: RecoveryContext): Promise<void> {
  const {layout, log, safe, store} = ctx
  // Running jobs of this node (an earlier run under the same node id) or whose lease expired: re-queued.
  // Another live node's running jobs are its own business.
  const now = storeNow(store.sql)
  for (const row of store.unfinished()) {
    if (row.status !== 'running') continue
    const lease = {id: row.id, lease_until: row.lease_until ?? null, leased_by: row.leased_by ?? null, output_path: row.output_path, source_path: row.source_path}
    const mine = lease.leased_by === null || lease.leased_by === ctx.leases.nodeId
    if (!mine && lease.lease_until !== null && lease.lease_until >= now) continue
    if (!ctx.leases.takeOver(lease, mine ? 'interrupted' : 'lease-lost')) continue
    await rm(row.output_path, {force: true, recursive: true})
    ctx.leases.requeue(row.id, mine ? 'recovered after an unclean stop: re-queued, partial outputs removed' : `lease of node ${lease.leased_by} expired: taken over and re-queued by node ${ctx.leases.nodeId} at its start, partial outputs removed`)
    log('warn', 'job:recovered', {file: row.source_path, job: row.id, ...(mine ? {} : {lost_by: lease.leased_by})}, 're-queued after an unclean stop')
  }
  // A refused processing directory is not read: its claims wait until it is fixed and the daemon restarted.
  const claims = await Promise.resolve()
    .then(() => readdir(safe(layout.processing)))
    .catch((error: unknown) => {
      log('error', 'recover:skipped', {dir: layout.processing}, mapForeignError(error).message)
      return undefined
    })
  if (claims === undefined) return
  for (const id of claims) {
    const dir = claimDir(layout.processing, id)
    const record = await readClaimRecord(safe(dir), id)
    // On a processing/ shared by several nodes: only this node's claims, or a dead node's (adopted once).
    const owner = ctx.claims.ownership(id, record?.main ?? id, record?.identity ?? `unrecorded:${id}`)
    if (owner === 'live-owner' || owner === 'taken') {
      log('debug', 'recover:not-mine', {intake: id}, owner === 'live-owner' ? 'claimed by a live node' : 'claimed by another node')
      continue
    }
    if (owner === 'adopted') log('info', 'claim:adopted', {file: record?.main, intake: id}, 'a claim of a node that is gone (or made before claim rows) is now this node\'s')
    if (store.jobsOfIntake(id).length > 0) {
      await ctx.settler.maybeSettle(id)
      continue
    }
    if (!record) {
      await rm(safe(dir), {force: true, recursive: true})
      ctx.claims.settled(id)
    } else if (existsSync(join(safe(dir), record.main))) {
      // Claimed (renamed) but the daemon died before recording the jobs: adopt it.
      log('warn', 'job:adopted', {file: record.main, intake: id}, 'claimed before an unclean stop')
      await ctx.planner.plan(dir, record)
    } else {
      await undoClaim(layout.inbox, safe(dir), record)
      ctx.claims.release(id)
      log('warn', 'file:unclaimed', {file: record.main, intake: id}, 'claim interrupted before its main file moved: put back')
    }
  }
  // This node's claims that never got their directory (or left it before the row said so) are closed.
  ctx.claims.closeMissing(new Set(claims))
}
