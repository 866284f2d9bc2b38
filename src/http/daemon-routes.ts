import type {DaemonSnapshot} from '../daemon/daemon-events.js'
import type {ReadinessCheck} from '../daemon/daemon-pieces.js'
import type {DaemonMetrics} from '../metrics/daemon-metrics.js'
import {type Route, json} from './routes.js'

export interface DaemonRouteInputs {
  metrics: DaemonMetrics
  snapshot: () => DaemonSnapshot
  readiness: () => Promise<ReadinessCheck[]>
  version: string
}

/** Liveness: the process answers. Open (no token) so probes need no secret; it says nothing but state and version. On the metrics and the API listener. */
export function healthRoute(snapshot: () => DaemonSnapshot, version: string): Route {
  return {
    async handle() {
      const s = snapshot()
      return json(200, {state: s.state, status: 'ok', uptime_seconds: Math.round((Date.now() - s.startedAt.getTime()) / 1000), version})
    },
    method: 'GET',
    name: 'health',
    open: true,
    path: '/api/v1/health',
  }
}

/** The metrics listener's routes: Prometheus metrics (at the seed's two paths), liveness and readiness. */
export function daemonRoutes(inputs: DaemonRouteInputs): Route[] {
  const scrape: Route['handle'] = async () => {
    const {body, contentType} = await inputs.metrics.scrape()
    return {body, contentType, status: 200}
  }
  return [
    {handle: scrape, method: 'GET', name: 'metrics', path: '/metrics'},
    {handle: scrape, method: 'GET', name: 'api-metrics', path: '/api/v1/metrics'},
    healthRoute(inputs.snapshot, inputs.version),
    {
      // Readiness: the daemon takes new work (store writable, directories usable, not paused or draining).
      async handle() {
        const checks = await inputs.readiness()
        const ready = checks.every((c) => c.ok)
        return json(ready ? 200 : 503, {checks, state: inputs.snapshot().state, status: ready ? 'ready' : 'not ready'})
      },
      method: 'GET',
      name: 'ready',
      path: '/api/v1/ready',
    },
  ]
}
