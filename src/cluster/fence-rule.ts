import {POSTGRES_DEFAULTS} from '../store/store-config.js'
import type {PostgresSettings} from '../store/store-target.js'

/**
 * B, the bound of one store call (ms): store.statement_timeout (default 5 s); 0 for the embedded SQLite
 * store (a local file, no network to wait for). The one accessor of it for leases and the config check.
 */
export function statementBoundMs(store: PostgresSettings | undefined): number {
  if (store === undefined) return 0
  return store.statementTimeoutMs ?? POSTGRES_DEFAULTS.statementTimeoutMs
}

/**
 * The self-fencing rule. A node whose renewals fail must stop its jobs before any other node may take them
 * over. The last renewal that succeeded was *issued* at `lastRenewedAt` (recorded before the call, so a
 * slow call does not make the lease look younger than it is); the store set lease_until to at least that
 * instant + lease_ttl. The keeper looks every heartbeat, and each look may take up to B (the store's
 * statement bound) to fail; so if it fences once θ = lease_ttl − 2 × heartbeat − B has passed, it notices
 * by lastRenewedAt + θ + heartbeat + B = lease expiry − heartbeat, leaving one heartbeat to kill its jobs.
 */
export function fenceAfterMs(settings: {leaseTtlMs: number; heartbeatMs: number; statementBoundMs: number}): number {
  return settings.leaseTtlMs - 2 * settings.heartbeatMs - settings.statementBoundMs
}

/** Whether a node whose last successful renewal was issued at `lastRenewedAt` must fence at `now`. */
export function mustFence(now: number, lastRenewedAt: number, fenceAfter: number): boolean {
  return now - lastRenewedAt >= fenceAfter
}
