import {type FSWatcher, watch} from 'node:fs'

import type {StoreOutage} from '../cluster/store-outage.js'
import {mapForeignError} from '../errors/map-foreign-error.js'
import type {ClaimPlanner} from './claim-planner.js'
import type {DaemonLogFn} from './daemon-pieces.js'
import type {IntakeClaims} from './intake-claims.js'
import type {ClaimSettler} from './settle-claim.js'
import {ignoredName, type IntakeScanner} from './intake-items.js'
import type {StabilityTracker, Tracked} from './stability.js'

/** How long the rows of settled intake claims are kept (a file moved back from processed/ is claimed again meanwhile too). */
const CLAIM_KEEP_MS = 7 * 24 * 3600_000
const CLAIM_PRUNE_INTERVAL_MS = 3600_000
/** fs events only bring the next scan forward, by this much; the periodic scan is the safety net. */
const EVENT_DELAY_MS = 50

export interface IntakeLoopInputs {
  inbox: string
  /** Milliseconds between two periodic scans (the stability interval). */
  intervalMs: number
  scanner: IntakeScanner
  stability: StabilityTracker
  planner: ClaimPlanner
  settler: ClaimSettler
  claims: IntakeClaims
  /** Whether new items may be claimed now: bookkeeping directories usable, the node taking work. */
  claimable: () => boolean
  /** The daemon is stopping: no scan starts, a running one claims nothing more. */
  stopping: () => boolean
  /** After a scan: start what may start, when a slot is free (the worker pool). */
  pump: () => void
  outage: StoreOutage
  log: DaemonLogFn
}

/**
 * The daemon's intake: a scan of the inbox on every stability interval and soon after an fs event. Each scan
 * observes the top-level files, groups them into items (intake-items.ts), and claims those that are stable
 * and complete (claim-planner.ts), one scan at a time. It also prunes old intake claim rows hourly.
 */
export class IntakeLoop {
  private watcher?: FSWatcher
  private timer?: NodeJS.Timeout
  private soon?: NodeJS.Timeout
  private pruneTimer?: NodeJS.Timeout
  private ticking = false
  /** When the last scan ended (the sd_notify watchdog pings only while intake is alive). */
  lastTickAt?: Date

  constructor(private readonly inputs: IntakeLoopInputs) {}

  /** Watch the inbox, start the timers and run the first scan. */
  async start(): Promise<void> {
    const {inbox, intervalMs, log} = this.inputs
    this.watcher = watch(inbox, (_event, name) => {
      if (!name || ignoredName(name) || this.soon) return
      this.soon = setTimeout(() => {
        this.soon = undefined
        void this.tick()
      }, EVENT_DELAY_MS)
    })
    this.watcher.on('error', (error) => log('warn', 'watch:error', {}, error.message))
    this.timer = setInterval(() => void this.tick(), intervalMs)
    this.pruneClaims()
    this.pruneTimer = setInterval(() => this.pruneClaims(), CLAIM_PRUNE_INTERVAL_MS)
    await this.tick()
  }

  close(): void {
    clearInterval(this.timer)
    clearTimeout(this.soon)
    clearInterval(this.pruneTimer)
    this.watcher?.close()
  }

  /** Bounded housekeeping of intake claim rows: settled ones after CLAIM_KEEP_MS, and those of nodes long gone. */
  private pruneClaims(): void {
    try {
      const removed = this.inputs.claims.prune(CLAIM_KEEP_MS)
      if (removed > 0) this.inputs.log('debug', 'claims:pruned', {removed})
    } catch (error) {
      this.inputs.log('warn', 'claims:prune-failed', {}, mapForeignError(error).message)
    }
  }

  private async tick(): Promise<void> {
    const {claimable, outage, planner, scanner, settler, stability, stopping} = this.inputs
    if (this.ticking || stopping()) return
    this.ticking = true
    try {
      // Claims whose planning or settling met a store outage go on once it answers (the heartbeat notices).
      if (!outage.down) {
        await planner.retryDeferred()
        await settler.retryDeferred()
      }
      const names = await scanner.topLevelFiles()
      const seen = new Map<string, Tracked>()
      for (const name of names) {
        const t = await stability.observe(name)
        if (t) seen.set(name, t)
      }
      const items = await scanner.scan(seen)
      stability.retain(new Set([...seen.keys(), ...items.flatMap((i) => [...i.required, ...i.optional])]))
      for (const item of claimable() ? items : []) {
        if (stopping()) break
        const main = seen.get(item.main)
        if (main && (await stability.ready(item, main))) {
          for (const rel of await planner.claim(item)) stability.forget(rel)
        }
      }
      this.inputs.pump()
    } catch (error) {
      if (!outage.failed(error, 'intake')) this.inputs.log('error', 'intake:error', {}, mapForeignError(error).message)
    } finally {
      this.ticking = false
      this.lastTickAt = new Date()
    }
  }
}
