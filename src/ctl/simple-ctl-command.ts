import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {controlRequest} from '../daemon/control-client.js'
import type {ClusterCommand} from '../daemon/cluster-commands.js'
import {clusterLines, type ClusterView, readClusterView} from './cluster-view.js'
import {type ClusterStore, clusterStoreOf, daemonStateDir, outputDirFlag} from './daemon-flags.js'
import {H2KError, isErrorCode} from '@hyper2kvm/plugin-api'
import {escapeControl} from '../render/escape-control.js'

/** `ctl pause|resume|drain|stop --all`: every daemon of a cluster, through its PostgreSQL store. */
export const allNodesFlags = {
  all: Flags.boolean({description: 'Every daemon sharing the PostgreSQL store of --config (written to the store; each daemon applies and acks it). Refused with a SQLite store.', default: false}),
  wait: Flags.integer({default: 15, dependsOn: ['all'], description: 'With --all: seconds to wait for the live daemons to ack (0: do not wait).', min: 0}),
}

/**
 * The cluster as the store shows it (every node, totals), for `ctl status|stats` with a PostgreSQL --config.
 * The store (and its drivers) is imported only here: `ctl status --output-dir D` loads none of it.
 */
export async function clusterOf(cluster: ClusterStore): Promise<ClusterView> {
  const {JobStore} = await import('../daemon/store.js')
  const store = JobStore.open(cluster.target, {readonly: true})
  try {
    return readClusterView(store.sql, cluster.leaseTtlMs)
  } finally {
    store.close()
  }
}

/**
 * `ctl status|stats|pause|resume|drain|stop`: one request on the control socket, humane output or --json.
 * With a --config whose store is PostgreSQL, status and stats add the cluster (every node and the job
 * counts of the shared store) — also when no daemon runs on this host; pause|resume|drain|stop --all go
 * to every node through the store.
 */
export abstract class SimpleCtlCommand extends BaseCommand<typeof SimpleCtlCommand> {
  static override flags = {...outputDirFlag}

  protected abstract readonly request: string
  /** Whether the command adds the cluster view (status, stats). */
  protected readonly clusterView: boolean = false

  public async run(): Promise<Record<string, unknown>> {
    const {all, wait} = this.flags as {all?: boolean; wait?: number}
    if (all === true) return this.runAll(wait ?? 15)
    const cluster = this.clusterView ? await clusterStoreOf(this.flags) : undefined
    let local: Record<string, unknown> | undefined
    try {
      local = await this.localReply()
    } catch (error) {
      // A cluster is shown from its store whether a daemon runs on this host or not.
      if (cluster === undefined || !(error instanceof H2KError && error.code === 'H2K_DAEMON_NOT_RUNNING')) throw error
    }
    const view = cluster === undefined ? undefined : await clusterOf(cluster)
    if (!this.jsonEnabled()) {
      if (local) this.print(local)
      else this.log('No daemon answers on this host (its control socket); the cluster, from its store:')
      if (view) for (const line of clusterLines(view)) this.log(line)
    }
    return view === undefined ? local! : {...(local ?? {local: null}), cluster: view}
  }

  private async localReply(): Promise<Record<string, unknown>> {
    const stateDirectory = await daemonStateDir(this.flags)
    const reply = await controlRequest(stateDirectory, this.request)
    // The daemon's id for this request: shown with an error (its log lines carry it), not in the result.
    const requestId = typeof reply.request_id === 'string' && /^req-[0-9a-f]{1,32}$/.test(reply.request_id) ? reply.request_id : undefined
    if (reply.ok !== true) {
      const error = (reply.error ?? {}) as {code?: string; message?: string}
      const message = error.message ?? 'The daemon refused the request.'
      throw new H2KError(isErrorCode(error.code) ? error.code : 'H2K_INTERNAL', requestId ? `${message} (request ${requestId}: grep the daemon's log for it)` : message, {
        details: requestId ? {request_id: requestId} : undefined,
      })
    }
    const {ok: _ok, request_id: _requestId, ...rest} = reply
    return rest
  }

  /** `--all`: one cluster command through the store; reports which live nodes acked it. */
  private async runAll(waitSeconds: number): Promise<Record<string, unknown>> {
    const {issueClusterCommand} = await import('./cluster-command-issuer.js')
    const result = await issueClusterCommand(await clusterStoreOf(this.flags), this.request as ClusterCommand, waitSeconds * 1000)
    if (!this.jsonEnabled()) {
      this.log(`${result.command} sent to every node (command ${result.id}); acked by: ${result.acked.length > 0 ? escapeControl(result.acked.join(', ')) : 'none yet'}`)
      if (result.pending.length > 0) this.warn(`not acked within ${waitSeconds} s by: ${escapeControl(result.pending.join(', '))} (they apply it when they next look, unless they stop first)`)
    }
    return {...result}
  }

  protected print(reply: Record<string, unknown>): void {
    const flat = (value: unknown): string => escapeControl(typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value))
    const width = Math.max(...Object.keys(reply).map((k) => k.length))
    for (const [key, value] of Object.entries(reply)) {
      if (Array.isArray(value) && value.length > 0 && typeof value[0] !== 'number') {
        this.log(`${key}:`)
        for (const item of value) this.log(`  ${flat(item)}`)
      } else this.log(`${key.padEnd(width)}  ${flat(value)}`)
    }
  }
}
