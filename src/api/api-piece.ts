import {H2KError} from '@hyper2kvm/plugin-api'
import type {DaemonPiece, PieceContext} from '../daemon/daemon-pieces.js'
import type {JobLogStore} from '../daemon/job-log-store.js'
import {BearerToken, isLoopback} from '../http/bearer-token.js'
import {HttpListener} from '../http/http-listener.js'
import {packageVersion} from '../http/http-piece.js'
import {healthRoute} from '../http/daemon-routes.js'
import {type Route, RouteTable} from '../http/routes.js'
import {resolveSecret} from '../secrets/resolve-secret.js'
import {EventStream} from './event-stream.js'
import {type JobServicePort, jobRoutes} from './job-routes.js'

export interface ApiPieceInputs {
  jobs: JobServicePort
  jobLog: JobLogStore
  /** Routes other parts add (schedules): mounted beside the job routes, under the same token and limits. */
  moreRoutes?: readonly Route[]
}

/**
 * The job service REST API (`api:` in the daemon configuration; openapi.yaml), on its own listener:
 * the job routes, the event stream, the dead-letter queue, /api/v1/health, and what other parts mount.
 * Off unless enabled. Bound beyond loopback it refuses to start without a token (`api.token` through the
 * secret sources, >= 16 characters): the API queues conversions of files on this host.
 */
export async function startApiPiece(ctx: PieceContext, inputs: ApiPieceInputs): Promise<DaemonPiece | undefined> {
  const settings = ctx.config.api
  if (!settings.enabled) return undefined
  const secret = await resolveSecret({file: settings.tokenFile, name: 'api.token', value: settings.token}, (message) => ctx.log('warn', 'secret:plain', {name: 'api.token'}, message))
  if (!secret && !isLoopback(settings.address)) {
    throw new H2KError('H2K_USAGE', `api.address ${settings.address} is beyond loopback, and no api.token is set: anyone who reaches the port could queue conversions.`, {
      suggestions: ['Set api.token_file to a file holding a long random token (e.g. `openssl rand -hex 32 > /etc/hyper2kvm/api.token; chmod 600 …`), or another secret source for api.token (see README: Secrets).', 'Or bind to loopback (api.address: 127.0.0.1, the default) and reach it through a local proxy.'],
    })
  }
  if (secret && secret.value.length < 16) {
    throw new H2KError('H2K_USAGE', `api.token (from ${secret.source}) is shorter than 16 characters: too easy to guess.`, {suggestions: ['Use a long random token: `openssl rand -hex 32`.']})
  }
  const events = new EventStream(settings.maxEventStreams)
  const routes = new RouteTable([
    healthRoute(ctx.snapshot, packageVersion()),
    ...jobRoutes({events, jobLog: inputs.jobLog, jobs: inputs.jobs, log: ctx.log, maxBodyBytes: settings.maxBodyBytes}),
    ...(inputs.moreRoutes ?? []),
  ])
  let listener: HttpListener
  try {
    listener = await HttpListener.listen({
      address: settings.address,
      browserGuard: 'full',
      label: 'api',
      log: ctx.log,
      port: settings.port,
      rateLimit: settings.rateLimit,
      routes,
      ...(secret ? {token: new BearerToken(secret.value)} : {}),
    })
  } catch (error) {
    events.close()
    throw error
  }
  const {address, port} = listener.address
  ctx.log('info', 'api:listening', {address, auth: secret ? `bearer (${secret.source})` : 'none', port}, `job service API on http://${address.includes(':') ? `[${address}]` : address}:${port}/api/v1/`)
  return {
    async close() {
      events.close()
      await listener.close()
    },
    name: 'api',
    onDaemonEvent: (event) => events.onDaemonEvent(event),
  }
}
