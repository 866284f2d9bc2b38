import {hostname, userInfo} from 'node:os'
import {setTimeout as sleep} from 'node:timers/promises'

import {H2KError} from '@hyper2kvm/plugin-api'
import {type ClusterCommand, ClusterCommands} from '../daemon/cluster-commands.js'
import {JobStore} from '../daemon/store.js'
import {readClusterView} from './cluster-view.js'
import type {ClusterStore} from './daemon-flags.js'

/** What `ctl pause|resume|drain|stop --all` reports: the command's id, the live nodes that acked it, and those that did not in time. */
export interface ClusterCommandResult {
  command: ClusterCommand
  id: number
  acked: string[]
  pending: string[]
}

/** Who issued a command, for the daemons' logs: user@host, in the characters a node id may use. */
function issuer(): string {
  const safe = (text: string): string => text.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64) || '?'
  let user = '?'
  try {
    user = userInfo().username
  } catch {
    // No passwd entry for this uid (a container): the host alone says enough.
  }
  return `${safe(user)}@${safe(hostname())}`
}

/**
 * Send one command to every daemon of a cluster through its store: one `cluster_commands` row and a NOTIFY;
 * each daemon running now applies it as if it came on its control socket and acks it. Waits up to `waitMs`
 * for the nodes alive at the time to ack. A SQLite store (one daemon) is refused: its socket reaches it.
 */
export async function issueClusterCommand(cluster: ClusterStore | undefined, command: ClusterCommand, waitMs: number): Promise<ClusterCommandResult> {
  if (cluster === undefined) {
    throw new H2KError('H2K_USAGE', `--all reaches every daemon through a shared PostgreSQL store; the configuration names none (a SQLite store has one daemon).`, {
      suggestions: [`Run \`ctl ${command}\` without --all to reach the daemon on its control socket.`, 'Pass the --config of a daemon whose store: (or database:) is a PostgreSQL URL.'],
    })
  }
  const store = JobStore.open(cluster.target)
  try {
    const live = readClusterView(store.sql, cluster.leaseTtlMs).nodes.filter((n) => n.alive).map((n) => n.node_id)
    const commands = new ClusterCommands(store.sql)
    const id = commands.issue(command, issuer())
    const end = Date.now() + waitMs
    let acked = commands.acks(id)
    while (live.some((node) => !acked.includes(node)) && Date.now() < end) {
      await sleep(100)
      acked = commands.acks(id)
    }
    return {acked, command, id, pending: live.filter((node) => !acked.includes(node))}
  } finally {
    store.close()
  }
}
