import {H2KError} from '@hyper2kvm/plugin-api'
import type {JobStore} from '../daemon/store.js'
import {DaemonJobService} from './job-service.js'

/**
 * The JobService over a store opened by a command (`dlq`), daemon running or not: reads, retry and purge
 * write through the store (WAL, busy_timeout: one writer at a time, a running daemon picks a re-queued job
 * up at its next intake scan). What needs the daemon itself is refused: submit (its configuration and
 * pieces), cancelling a running job (its worker). Events of these changes reach no daemon piece (webhooks,
 * SSE): the API does that.
 */
export function offlineJobService(store: JobStore): DaemonJobService {
  const needsDaemon = (what: string) => (): never => {
    throw new H2KError('H2K_USAGE', `${what} needs the daemon: use its API (hyper2kvm jobs …).`)
  }
  return new DaemonJobService({
    abortRunning: () => false,
    config: needsDaemon('Submitting jobs'),
    emit: () => {},
    log: () => {},
    settle: async () => {},
    store,
    wake: () => {},
  })
}
