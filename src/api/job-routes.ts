import {H2KError} from '@hyper2kvm/plugin-api'
import type {DaemonLogFn} from '../daemon/daemon-pieces.js'
import type {JobLogStore} from '../daemon/job-log-store.js'
import type {JobRow} from '../daemon/store.js'
import type {JobDetail, JobService} from '../service/job-service-types.js'
import {type HttpReply, type HttpRequestContext, type HttpStreamReply, type Route, errorReply, json} from '../http/routes.js'
import {apiErrorReply, badParameter} from './api-errors.js'
import {requireFullId} from './destructive-id.js'
import type {EventStream} from './event-stream.js'
import {attemptJson, historyJson, jobJson, parsedObject} from './job-json.js'

/** The routes reach jobs through the job service only. */
export type JobServicePort = JobService

export interface JobRouteInputs {
  jobs: JobServicePort
  jobLog: JobLogStore
  events: EventStream
  log: DaemonLogFn
  maxBodyBytes: number
}

const STATUSES = ['queued', 'running', 'retry_wait', 'succeeded', 'failed', 'duplicate', 'cancelled', 'dead', 'skipped'] as const
const EVENT_NAMES = /^[a-z]+\.[a-z]+$/

/** An integer query parameter within bounds, or undefined when absent; H2K_USAGE otherwise. */
function intParam(url: URL, name: string, min: number, max: number): number | undefined {
  const text = url.searchParams.get(name)
  if (text === null) return undefined
  if (!/^\d{1,9}$/.test(text) || Number(text) < min || Number(text) > max) throw badParameter(name, `an integer from ${min} to ${max}`)
  return Number(text)
}

function cursorParam(url: URL): string | undefined {
  const cursor = url.searchParams.get('cursor') ?? undefined
  if (cursor !== undefined && (cursor.length === 0 || cursor.length > 512 || !/^[A-Za-z0-9_-]+={0,2}$/.test(cursor))) throw badParameter('cursor', 'the next_cursor of a previous page')
  return cursor
}

const page = (result: {jobs: JobRow[]; nextCursor: string | null}): HttpReply => json(200, {jobs: result.jobs.map(jobJson), next_cursor: result.nextCursor})

/**
 * The job routes of the REST API (openapi.yaml): submit, list, show, cancel, retry, a job's log, the event
 * stream and the dead-letter queue. Every route goes through the job service; every failure goes through
 * apiErrorReply (the one code → status mapping).
 */
export function jobRoutes(inputs: JobRouteInputs): Route[] {
  const {jobs, log} = inputs
  /** A handler whose H2KErrors become API errors. */
  const guarded = (name: string, fn: (ctx: HttpRequestContext) => Promise<HttpReply | HttpStreamReply> | HttpReply | HttpStreamReply): Route['handle'] => async (ctx) => {
    try {
      return await fn(ctx)
    } catch (error) {
      return apiErrorReply(error, ctx.requestId, log, name)
    }
  }
  const found = (ctx: HttpRequestContext, status?: 'dead') => {
    if (ctx.req.method !== 'GET') requireFullId(ctx.params.id!)
    const detail = jobs.show(ctx.params.id!)
    if (!detail || (status && detail.job.status !== status)) throw new H2KError('H2K_NOT_FOUND', status ? 'No dead job with this id.' : 'No job with this id (or the prefix is not unique).')
    return detail
  }
  const detailJson = (d: JobDetail) => ({
    attempts: d.attempts.map(attemptJson),
    dependents: d.dependents,
    depends_on: d.dependsOn,
    history: historyJson(d.history),
    job: jobJson(d.job),
    report: d.result !== undefined && d.result !== null && typeof d.result === 'object' ? d.result : parsedObject(d.job.result_json),
  })
  const route = (name: string, method: Route['method'], path: string, fn: Parameters<typeof guarded>[1], more: Partial<Route> = {}): Route => ({handle: guarded(name, fn), method, name, path, ...more})

  return [
    route('jobs-submit', 'POST', '/api/v1/jobs', async (ctx) => {
      if (ctx.body === undefined) throw new H2KError('H2K_JOB_INVALID', 'The request body must be a job document (JSON): one job, or `jobs: [...]`.')
      const queued = await jobs.submit(ctx.body, {origin: 'api', requestId: ctx.requestId})
      log('info', 'api:submitted', {jobs: queued.map((j) => j.id).join(','), request_id: ctx.requestId})
      return json(201, {jobs: queued.map(jobJson), request_id: ctx.requestId})
    }, {body: 'json', maxBodyBytes: inputs.maxBodyBytes}),
    route('jobs-list', 'GET', '/api/v1/jobs', ({url}) => {
      const status = url.searchParams.get('status') ?? undefined
      if (status !== undefined && !(STATUSES as readonly string[]).includes(status)) throw badParameter('status', `one of ${STATUSES.join(', ')}`)
      const limit = intParam(url, 'limit', 1, 500) ?? 50
      return page(jobs.list({limit, ...(status ? {status: status as JobRow['status']} : {}), ...(cursorParam(url) ? {cursor: cursorParam(url)} : {})}))
    }),
    route('job', 'GET', '/api/v1/jobs/:id', (ctx) => json(200, detailJson(found(ctx)))),
    route('job-cancel', 'POST', '/api/v1/jobs/:id/cancel', (ctx) => {
      const reason = (ctx.body as {reason?: unknown} | undefined)?.reason
      if (ctx.body !== undefined && (typeof ctx.body !== 'object' || ctx.body === null || Array.isArray(ctx.body) || Object.keys(ctx.body).some((k) => k !== 'reason'))) throw new H2KError('H2K_USAGE', 'The body of a cancel request is optional: {"reason": "…"}.')
      if (reason !== undefined && (typeof reason !== 'string' || reason.length > 500)) throw new H2KError('H2K_USAGE', 'reason must be text of at most 500 characters.')
      const {job} = found(ctx)
      const row = jobs.cancel(job.id, reason ?? `cancelled through the API (request ${ctx.requestId})`)
      log('info', 'api:cancel', {job: job.id, request_id: ctx.requestId})
      return json(200, {job: jobJson(row)})
    }, {body: 'json', maxBodyBytes: 4096}),
    route('job-retry', 'POST', '/api/v1/jobs/:id/retry', (ctx) => {
      const {job} = found(ctx)
      const rows = jobs.retry(job.id)
      log('info', 'api:retry', {job: job.id, jobs: rows.map((r) => r.id).join(','), request_id: ctx.requestId})
      return json(200, {jobs: rows.map(jobJson)})
    }),
    route('job-log', 'GET', '/api/v1/jobs/:id/log', (ctx) => {
      const after = intParam(ctx.url, 'after', 0, 999_999_999) ?? 0
      const limit = intParam(ctx.url, 'limit', 1, 1000) ?? 1000
      const {job} = found(ctx)
      const lines = inputs.jobLog.lines(job.id, after, limit)
      return json(200, {last_seq: lines.at(-1)?.seq ?? after, lines})
    }),
    route('events', 'GET', '/api/v1/events', ({req, requestId, url}) => {
      if (inputs.events.full) return errorReply(503, 'Too many event streams are open; try again later.', requestId, {headers: {'Retry-After': '10'}})
      const job = url.searchParams.get('job') ?? undefined
      if (job !== undefined && (job.length === 0 || job.length > 128)) throw badParameter('job', 'a job id')
      const names = url.searchParams.get('events')?.split(',').filter(Boolean)
      if (names && (names.length > 20 || names.some((n) => !EVENT_NAMES.test(n)))) throw badParameter('events', 'comma-separated event names such as job.completed')
      const last = req.headers['last-event-id']
      const lastEventId = typeof last === 'string' && /^\d{1,15}$/.test(last) ? Number(last) : undefined
      // A job prefix is resolved to its id (events carry full ids).
      const jobId = job === undefined ? undefined : (jobs.show(job)?.job.id ?? job)
      return inputs.events.reply({...(jobId ? {job: jobId} : {}), ...(names ? {events: names} : {}), ...(lastEventId === undefined ? {} : {lastEventId})})
    }),
    route('dlq-list', 'GET', '/api/v1/dlq', ({url}) => {
      const limit = intParam(url, 'limit', 1, 500) ?? 50
      const cursor = cursorParam(url)
      return page(jobs.dead({limit, ...(cursor ? {cursor} : {})}))
    }),
    route('dlq-purge', 'DELETE', '/api/v1/dlq', ({requestId, url}) => {
      if (url.searchParams.get('confirm') !== 'yes') throw badParameter('confirm', '"yes" to delete every dead job')
      const deleted = jobs.purge()
      log('info', 'api:dlq-purged', {deleted, request_id: requestId})
      return json(200, {deleted})
    }),
    route('dlq-job', 'GET', '/api/v1/dlq/:id', (ctx) => json(200, detailJson(found(ctx, 'dead')))),
    route('dlq-delete', 'DELETE', '/api/v1/dlq/:id', (ctx) => {
      const {job} = found(ctx, 'dead')
      const deleted = jobs.purge(job.id)
      log('info', 'api:dlq-purged', {deleted, job: job.id, request_id: ctx.requestId})
      return json(200, {deleted})
    }),
    route('dlq-retry', 'POST', '/api/v1/dlq/:id/retry', (ctx) => {
      const {job} = found(ctx, 'dead')
      const rows = jobs.retry(job.id)
      log('info', 'api:retry', {job: job.id, jobs: rows.map((r) => r.id).join(','), request_id: ctx.requestId})
      return json(200, {jobs: rows.map(jobJson)})
    }),
  ]
}
