import type {DaemonConfig} from '../daemon/config.js'
import type {DaemonPiece, PieceContext} from '../daemon/daemon-pieces.js'
import {type Clock, systemClock} from './clock.js'
import {scheduleRoutes} from './schedule-routes.js'
import {ScheduleStore} from './schedule-store.js'
import {Scheduler} from './scheduler.js'

/**
 * The daemon's schedules: the configuration's `schedules:` synced into the store (at start, and on
 * SIGHUP through onReload), runs missed while the daemon was down caught up, then a timer for the next
 * due time. Its routes join the REST API (ctx.apiRoutes). Always started: schedules may be created over
 * the API even when the file has none.
 */
export async function startSchedulePiece(ctx: Pick<PieceContext, 'config' | 'log' | 'emit' | 'jobs' | 'sql' | 'apiRoutes'>, clock: Clock = systemClock): Promise<DaemonPiece> {
  let config: DaemonConfig = ctx.config
  const scheduler = new Scheduler({
    allowedInputDirs: () => config.allowedInputDirs,
    clock,
    emit: ctx.emit,
    log: ctx.log,
    store: new ScheduleStore(ctx.sql),
    submit: (document, options) => ctx.jobs.submit(document, options),
  })
  scheduler.sync(config.schedules)
  await scheduler.start()
  ctx.apiRoutes.push(...scheduleRoutes({log: ctx.log, scheduler}))
  return {
    close: () => scheduler.stop(),
    name: 'schedules',
    onReload(next) {
      config = next
      scheduler.sync(next.schedules)
    },
  }
}
