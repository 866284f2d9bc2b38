import {createRequire} from 'node:module'

import type {DaemonPiece, PieceContext} from '../daemon/daemon-pieces.js'
import {H2KError} from '@hyper2kvm/plugin-api'
import {DaemonMetrics} from '../metrics/daemon-metrics.js'
import {resolveSecret} from '../secrets/resolve-secret.js'
import {BearerToken, isLoopback} from './bearer-token.js'
import {daemonRoutes} from './daemon-routes.js'
import {HttpListener} from './http-listener.js'
import {type Route, RouteTable} from './routes.js'

/** The version in package.json (src/ and dist/ sit at the same depth). */
export function packageVersion(): string {
  return (createRequire(import.meta.url)('../../package.json') as {version: string}).version
}

/**
 * The HTTP listener with metrics and health (`metrics:` in the daemon configuration), or nothing when it
 * is not enabled. Bound beyond loopback it refuses to start without a token (`metrics.token`, resolved
 * through the secret sources): metrics and readiness name directories and volumes an outsider should not
 * read, and a listener open to the network by accident is the mistake this rule prevents. `moreRoutes`
 * (the job service's `/api/v1/jobs` …) join the same table, token and limits.
 */
export async function startHttpPiece(ctx: PieceContext, moreRoutes: readonly Route[] = []): Promise<DaemonPiece | undefined> {
  const settings = ctx.config.metrics
  if (!settings.enabled) return undefined
  const secret = await resolveSecret({file: settings.tokenFile, name: 'metrics.token', value: settings.token}, (message) => ctx.log('warn', 'secret:plain', {name: 'metrics.token'}, message))
  const loopback = isLoopback(settings.address)
  if (!secret && !loopback) {
    throw new H2KError('H2K_USAGE', `metrics.address ${settings.address} is beyond loopback, and no metrics.token is set: the listener would serve anyone who reaches the port.`, {
      suggestions: ['Set metrics.token_file to a file holding a long random token (e.g. `openssl rand -hex 32 > /etc/hyper2kvm/metrics.token; chmod 600 …`), or another secret source for metrics.token (see README: Secrets).', 'Or bind to loopback (metrics.address: 127.0.0.1, the default) and scrape through a local agent or proxy.'],
    })
  }
  if (secret && secret.value.length < 16) {
    throw new H2KError('H2K_USAGE', `metrics.token (from ${secret.source}) is shorter than 16 characters: too easy to guess.`, {
      suggestions: ['Use a long random token: `openssl rand -hex 32`.'],
    })
  }
  const metrics = new DaemonMetrics(ctx.snapshot, packageVersion())
  const routes = new RouteTable([...daemonRoutes({metrics, readiness: ctx.readiness, snapshot: ctx.snapshot, version: packageVersion()}), ...moreRoutes])
  const listener = await HttpListener.listen({
    address: settings.address,
    browserGuard: 'host',
    log: ctx.log,
    onAnswered: (route, status) => metrics.countRequest(route, status),
    port: settings.port,
    routes,
    ...(secret ? {token: new BearerToken(secret.value)} : {}),
  })
  const {address, port} = listener.address
  ctx.log('info', 'http:listening', {address, auth: secret ? `bearer (${secret.source})` : 'none', port}, `metrics on http://${address.includes(':') ? `[${address}]` : address}:${port}/metrics`)
  return {
    close: () => listener.close(),
    name: 'http',
    onDaemonEvent: (event) => metrics.onDaemonEvent(event),
  }
}
