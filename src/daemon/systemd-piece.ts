import type {DaemonSnapshot} from './daemon-events.js'
import type {DaemonPiece, PieceContext} from './daemon-pieces.js'
import {type SdNotify, systemdNotifier} from './sd-notify.js'

/** Whether the daemon looks alive enough for a watchdog ping, and why not. */
export interface WatchdogVerdict {
  ok: boolean
  reason?: string
}

/**
 * The watchdog ping proves more than a running timer: the intake loop must have finished a scan recently
 * (a scan stuck on a hung file system, or a wedged loop, stops the pings and systemd restarts the daemon).
 * "Recently" is the watchdog period itself, or three scan intervals when scans are rarer than that. A
 * daemon that does not report its scans (`intakeTickAt` undefined, before the first scan) is judged by
 * the event loop alone: this timer ran.
 */
export function watchdogVerdict(snapshot: Pick<DaemonSnapshot, 'intakeIntervalMs' | 'intakeTickAt'>, watchdogUsec: number, now = Date.now()): WatchdogVerdict {
  if (snapshot.intakeTickAt === undefined) return {ok: true}
  const limitMs = Math.max(watchdogUsec / 1000, 3 * (snapshot.intakeIntervalMs ?? 0))
  const ageMs = now - snapshot.intakeTickAt.getTime()
  return ageMs <= limitMs ? {ok: true} : {ok: false, reason: `the intake loop has not finished a scan for ${Math.round(ageMs / 1000)} s (limit ${Math.round(limitMs / 1000)} s)`}
}

const statusLine = (s: DaemonSnapshot): string => `${s.state.toLowerCase()}: ${s.running} running, ${s.queued} queued, ${s.pendingFiles} pending`

/**
 * systemd integration as a piece: STATUS= on state and job changes, STOPPING=1 when the daemon starts
 * stopping (a signal, `ctl stop`, or the end of a drain), and WATCHDOG=1 every WATCHDOG_USEC/2 while the
 * daemon is alive. READY=1 and RELOADING=1 are sent by the daemon command, the only place that knows
 * when start() has finished and when a SIGHUP reload is done (sendReady / sendReloading below).
 */
export function startSystemdPiece(ctx: PieceContext): DaemonPiece | undefined {
  const {notifier, problem} = systemdNotifier()
  if (problem) ctx.log('warn', 'sd-notify:unavailable', {}, problem)
  if (!notifier) return undefined
  const send = (state: Record<string, string | number>, what: string) => {
    void notifier.notify(state).then((error) => {
      if (error) ctx.log('warn', 'sd-notify:failed', {socket: notifier.socketPath, what}, error.message)
    })
  }
  let timer: NodeJS.Timeout | undefined
  if (notifier.watchdogUsec !== undefined) {
    const usec = notifier.watchdogUsec
    let withheld = false
    timer = setInterval(() => {
      let verdict: WatchdogVerdict
      try {
        verdict = watchdogVerdict(ctx.snapshot(), usec)
      } catch (error) {
        verdict = {ok: false, reason: `the daemon's state cannot be read (${(error as Error).message})`}
      }
      if (verdict.ok) {
        if (withheld) ctx.log('info', 'sd-notify:watchdog-resumed', {})
        withheld = false
        send({WATCHDOG: 1}, 'watchdog')
      } else if (!withheld) {
        withheld = true
        ctx.log('error', 'sd-notify:watchdog-withheld', {}, `${verdict.reason}: no watchdog ping (systemd restarts the daemon after WatchdogSec)`)
      }
    }, Math.max(Math.floor(usec / 2000), 10))
    timer.unref()
  }
  let stopping = false
  return {
    async close() {
      clearInterval(timer)
      notifier.close()
    },
    name: 'systemd',
    onDaemonEvent(event) {
      if (event.type === 'daemon:state') {
        if (event.state === 'STOPPING' && !stopping) {
          stopping = true
          clearInterval(timer)
          send({STATUS: 'stopping', STOPPING: 1}, 'stopping')
        } else if (!stopping) {
          send({STATUS: statusLine(ctx.snapshot())}, 'status')
        }
      } else if (!stopping && (event.type === 'job:started' || event.type === 'job:succeeded' || event.type === 'job:failed')) {
        send({STATUS: statusLine(ctx.snapshot())}, 'status')
      }
    },
  }
}

/** READY=1 once the daemon has started (or finished a reload), with MAINPID and a status line. */
export function sendReady(snapshot: DaemonSnapshot): Promise<Error | undefined> {
  return notify({MAINPID: process.pid, READY: 1, STATUS: statusLine(snapshot)})
}

/** RELOADING=1 with the monotonic clock systemd compares (Type=notify-reload); READY=1 follows when done. */
export function sendReloading(): Promise<Error | undefined> {
  return notify({MONOTONIC_USEC: String(process.hrtime.bigint() / 1000n), RELOADING: 1, STATUS: 'reloading the configuration'})
}

function notify(state: Record<string, string | number>): Promise<Error | undefined> {
  const notifier: SdNotify | undefined = systemdNotifier().notifier
  return notifier ? notifier.notify(state) : Promise.resolve(undefined)
}
