import {H2KError} from '@hyper2kvm/plugin-api'
import {apiErrorReply} from '../api/api-errors.js'
import type {DaemonLogFn} from '../daemon/daemon-pieces.js'
import {type HttpReply, json, type Route} from '../http/routes.js'
import {runView, type Schedule, scheduleView} from './schedule.js'
import {parseSchedule} from './schedule-keys.js'
import {notFound, type Scheduler} from './scheduler.js'

/** A schedule body is small: a template is a few keys (an inline batch of a wave stays well below this). */
const MAX_SCHEDULE_BODY = 256 * 1024

/** What the routes need: the scheduler, and how a server-side failure is logged. */
export interface ScheduleRoutesContext {
  scheduler: Scheduler
  log: DaemonLogFn
}

/**
 * The schedule endpoints of the REST API (openapi.yaml):
 * POST/GET /api/v1/schedules, GET/PATCH/DELETE /api/v1/schedules/{id}, POST /api/v1/schedules/{id}/trigger.
 * The API's listener mounts them with its token, limits and request ids.
 */
export function scheduleRoutes(ctx: ScheduleRoutesContext): Route[] {
  const {scheduler} = ctx
  const guarded =
    (fn: (c: Parameters<Route['handle']>[0]) => Promise<HttpReply> | HttpReply): Route['handle'] =>
    async (c) => {
      try {
        return await fn(c)
      } catch (error) {
        return apiErrorReply(error, c.requestId, ctx.log, 'schedules')
      }
    }
  const existing = (id: string): Schedule => {
    const schedule = scheduler.get(id)
    if (!schedule) throw notFound(id)
    return schedule
  }
  return [
    {
      body: 'json',
      handle: guarded(async ({body}) => {
        const spec = await parseSchedule(body ?? {}, {source: 'api', where: 'request body'})
        return json(201, {schedule: scheduleView(scheduler.create(spec))})
      }),
      maxBodyBytes: MAX_SCHEDULE_BODY,
      method: 'POST',
      name: 'schedules.create',
      path: '/api/v1/schedules',
    },
    {
      handle: guarded(() => json(200, {schedules: scheduler.list().map(scheduleView)})),
      method: 'GET',
      name: 'schedules.list',
      path: '/api/v1/schedules',
    },
    {
      handle: guarded(({params}) => {
        const schedule = existing(params.id!)
        return json(200, {runs: scheduler.runs(schedule.id).map(runView), schedule: scheduleView(schedule)})
      }),
      method: 'GET',
      name: 'schedules.show',
      path: '/api/v1/schedules/:id',
    },
    {
      body: 'json',
      handle: guarded(async ({body, params}) => {
        const current = existing(params.id!)
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new H2KError('H2K_USAGE', 'request body: a PATCH is a mapping of the keys to change (e.g. {"enabled": false}).')
        const patch = body as Record<string, unknown>
        if (patch.id !== undefined && patch.id !== current.id) throw new H2KError('H2K_USAGE', 'request body: id cannot be changed; create a new schedule and delete this one.')
        // The schedule's own keys, the patch over them (`schedule` and `cron` name the same thing).
        const {created_at: _c, last_run: _l, next_run: _n, run_count: _r, source: _s, updated_at: _u, ...keys} = scheduleView(current)
        const merged = Object.fromEntries(Object.entries({...keys, ...patch, ...(patch.schedule === undefined ? {} : {cron: patch.schedule}), schedule: undefined}).filter(([, v]) => v !== null && v !== undefined))
        const spec = await parseSchedule(merged, {source: 'api', where: 'request body'})
        return json(200, {schedule: scheduleView(scheduler.update(spec))})
      }),
      maxBodyBytes: MAX_SCHEDULE_BODY,
      method: 'PATCH',
      name: 'schedules.update',
      path: '/api/v1/schedules/:id',
    },
    {
      handle: guarded(({params}) => {
        scheduler.remove(params.id!)
        return json(200, {deleted: params.id!})
      }),
      method: 'DELETE',
      name: 'schedules.delete',
      path: '/api/v1/schedules/:id',
    },
    {
      body: 'json',
      handle: guarded(async ({body, params}) => {
        const options = body ?? {}
        if (typeof options !== 'object' || options === null || Array.isArray(options) || Object.keys(options).some((k) => k !== 'override_window')) {
          throw new H2KError('H2K_USAGE', 'request body: a trigger takes at most {"override_window": true|false}.')
        }
        const override = (options as {override_window?: unknown}).override_window
        if (override !== undefined && typeof override !== 'boolean') throw new H2KError('H2K_USAGE', 'request body: override_window must be true or false.')
        const run = await scheduler.trigger(params.id!, {overrideWindow: override === true})
        return json(201, {run: runView(run)})
      }),
      maxBodyBytes: 4096,
      method: 'POST',
      name: 'schedules.trigger',
      path: '/api/v1/schedules/:id/trigger',
    },
  ]
}
