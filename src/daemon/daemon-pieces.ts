import type {SqlDb} from '../store/sql-db.js'

import {startApiPiece} from '../api/api-piece.js'
import {startHttpPiece} from '../http/http-piece.js'
import type {Route} from '../http/routes.js'
import {startSchedulePiece} from '../schedule/schedule-piece.js'
import {mapForeignError} from '../errors/map-foreign-error.js'
import type {DaemonConfig} from './config.js'
import type {JobService} from '../service/job-service-types.js'
import type {DaemonEvent, DaemonListener, DaemonSnapshot} from './daemon-events.js'
import type {DispatchGate} from './dispatch-gate.js'
import type {JobLogStore} from './job-log-store.js'
import type {JobPolicy} from './job-policy.js'
import type {Clock} from '../time/clock.js'
import {DeliveryPiece} from './delivery-piece.js'
import type {DeliveryProducer} from './delivery-producer.js'
import {NotifyProducer} from '../notify/notify-producer.js'
import {WebhookProducer} from '../webhooks/webhook-producer.js'
import {StallDetector} from './stall-detector.js'
import {startWindowPiece} from '../schedule/window-piece.js'
import {startSystemdPiece} from './systemd-piece.js'

export type DaemonLogLevel = 'error' | 'warn' | 'info' | 'debug'
/** The daemon's one-line-per-event logger. */
export type DaemonLogFn = (level: DaemonLogLevel, event: string, fields?: Record<string, unknown>, message?: string) => void

/** One readiness check (`/api/v1/ready`): store writable, directories present, not draining … */
export interface ReadinessCheck {
  name: string
  ok: boolean
  detail?: string
}

/** What a piece gets from the daemon: narrow inputs, never the daemon itself. */
export interface PieceContext {
  config: DaemonConfig
  log: DaemonLogFn
  /** Counts read at the moment (gauges, stall detection). */
  snapshot: () => DaemonSnapshot
  /** Readiness checks, run when asked. */
  readiness: () => Promise<ReadinessCheck[]>
  /** Send an event to every piece (e.g. a stall detector reporting `daemon:stalled`). */
  emit: (event: DaemonEvent) => void
  /** The daemon's jobs: submit, list, show, cancel, retry, the dead-letter queue (the API and schedules use it). */
  jobs: JobService
  /** The daemon's one clock (the pump, retry timers, windows, schedules): a test drives it. */
  clock: Clock
  /** A job's policy (depends_on, retry, window keys) as the store keeps it; undefined for an unknown job. */
  jobPolicy: (id: string) => JobPolicy | undefined
  /** Register one more dispatch gate (e.g. time windows): asked about every queued job before it starts. */
  addGate: (gate: DispatchGate) => void
  /** The job store's connection, for pieces with tables of their own (their own store class, their own migration). */
  sql: SqlDb
  /** This daemon's node id (the notification outbox rows it writes and delivers). */
  nodeId: string
  /** Each job's own log lines (job_log): the API serves them. */
  jobLog: JobLogStore
  /** Routes other pieces add to the REST API (schedules): push before the API piece starts (it starts last). */
  apiRoutes: Route[]
}

/** Something the daemon composes: it may listen to events, and is closed when the daemon stops. */
export interface DaemonPiece extends Partial<DaemonListener> {
  readonly name: string
  /** Called once the daemon is stopping, after the last job event; flush and release. */
  close?(): Promise<void>
  /** SIGHUP: the configuration as it now runs (live keys applied). */
  onReload?(config: DaemonConfig): void
}

/**
 * The pieces around the daemon (notifications, the HTTP listener with metrics and health, sd_notify),
 * started once the store is open. Each is built from the configuration and the narrow context; one that
 * fails to start fails the daemon's start (a configured webhook or listener that cannot work is an error,
 * not a silent degradation).
 */
export async function startPieces(ctx: PieceContext): Promise<DaemonPiece[]> {
  const pieces: DaemonPiece[] = []
  try {
    // The HTTP listener (metrics, health) first: a taken port or a missing token fails the start.
    const http = await startHttpPiece(ctx)
    if (http) pieces.push(http)
    const notifications = ctx.config.notifications
    // Stalls are logged (and reach every piece) whether or not anyone is notified of them.
    pieces.push(new StallDetector(notifications.stallCheckInterval, ctx.snapshot, ctx.emit, ctx.log))
    // One delivery engine for notifications and lifecycle webhooks (either may be configured alone).
    const delivery = DeliveryPiece.start(producersOf(ctx), ctx, ctx.log, notifications.delivery)
    if (delivery) pieces.push(delivery)
    const systemd = startSystemdPiece(ctx)
    if (systemd) pieces.push(systemd)
    // Time windows: the dispatch gate keeping jobs queued outside their window, and window_end: cancel.
    pieces.push(startWindowPiece(ctx))
    // Schedules: synced from the configuration, caught up on what was missed; their routes join ctx.apiRoutes.
    pieces.push(await startSchedulePiece(ctx, ctx.clock))
    // The REST API last: it mounts the routes the pieces before it added to ctx.apiRoutes.
    const api = await startApiPiece(ctx, {jobLog: ctx.jobLog, jobs: ctx.jobs, moreRoutes: ctx.apiRoutes})
    if (api) pieces.push(api)
  } catch (error) {
    // What did start is released: a failed start leaves no listener or outbox connection behind.
    for (const piece of pieces) {
      await piece.close?.().catch((closeError: unknown) => ctx.log('warn', 'piece:close-failed', {piece: piece.name}, mapForeignError(closeError).message))
    }
    throw error
  }
  return pieces
}

/** Who sends messages out: notifications when enabled (with a channel), lifecycle webhooks when any is enabled. */
function producersOf(ctx: PieceContext): DeliveryProducer[] {
  const {notifications, webhooks} = ctx.config
  const producers: DeliveryProducer[] = []
  for (const warning of notifications.warnings) ctx.log('warn', 'notify:config', {}, warning)
  if (notifications.enabled) {
    const notify = new NotifyProducer(notifications)
    if (notify.channels.length === 0) ctx.log('warn', 'notify:no-channel', {}, 'notifications.enabled is true but neither webhook_url, webhooks nor email_enabled is set')
    else producers.push(notify)
  }
  const lifecycle = new WebhookProducer(webhooks)
  const off = webhooks.length - lifecycle.channels.length
  if (off > 0) ctx.log('info', 'webhook:disabled', {count: off}, `${off} lifecycle webhook(s) with enabled: false: nothing is sent to them`)
  if (lifecycle.channels.length > 0) producers.push(lifecycle)
  return producers
}

/** Deliver one event to every piece; a piece that throws is logged, never allowed to stop the daemon. */
export function dispatch(pieces: readonly DaemonPiece[], event: DaemonEvent, log: DaemonLogFn): void {
  for (const piece of pieces) {
    try {
      piece.onDaemonEvent?.(event)
    } catch (error) {
      log('warn', 'piece:error', {piece: piece.name, event: event.type}, (error as Error).message)
    }
  }
}
