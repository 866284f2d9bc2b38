import type {SqlDb} from '../store/sql-db.js'
import {nowMsSql} from '../store/store-clock.js'

/** What `ctl … --all` sends every node. */
export const CLUSTER_COMMANDS = ['pause', 'resume', 'drain', 'stop'] as const
export type ClusterCommand = (typeof CLUSTER_COMMANDS)[number]

/** The channel a daemon LISTENs on for new commands (PostgreSQL NOTIFY; it polls besides). */
export const CLUSTER_COMMAND_CHANNEL = 'h2k_cluster_commands'

export interface ClusterCommandRow {
  id: number
  command: ClusterCommand
  target_node: string | null
  issued_at: number
  issued_by: string
}

/**
 * `cluster_commands` and their acks (migration 5): ctl writes one row for every node (or one node), and
 * NOTIFYs; each daemon applies the commands issued after it started, as if they came on its control socket,
 * and acks each (a restarted daemon starts past the commands it already saw: nothing is replayed).
 */
export class ClusterCommands {
  constructor(private readonly db: SqlDb) {}

  /** Write one command and wake the daemons; returns its id. */
  issue(command: ClusterCommand, issuedBy: string, targetNode?: string): number {
    return this.db.transaction(() => {
      const row = this.db.get<{id: number}>(`INSERT INTO cluster_commands (command, target_node, issued_at, issued_by) VALUES (?, ?, ${nowMsSql(this.db.engine)}, ?) RETURNING id`, [command, targetNode ?? null, issuedBy])
      this.db.notify(CLUSTER_COMMAND_CHANNEL)
      return Number(row!.id)
    })
  }

  /** The newest command's id (0 when none): a daemon starting applies only commands after it. */
  latestId(): number {
    return Number(this.db.get<{id: number | null}>('SELECT MAX(id) AS id FROM cluster_commands')?.id ?? 0)
  }

  /** Commands for `nodeId` after `afterId` that it has not acked, oldest first. */
  pending(nodeId: string, afterId: number): ClusterCommandRow[] {
    return this.db
      .all<ClusterCommandRow>(
        'SELECT c.* FROM cluster_commands c WHERE c.id > ? AND (c.target_node IS NULL OR c.target_node = ?) AND NOT EXISTS (SELECT 1 FROM cluster_command_acks a WHERE a.command_id = c.id AND a.node_id = ?) ORDER BY c.id',
        [afterId, nodeId, nodeId],
      )
      .map((row) => ({...row, id: Number(row.id), issued_at: Number(row.issued_at)}))
  }

  ack(commandId: number, nodeId: string): void {
    this.db.run(`INSERT INTO cluster_command_acks (command_id, node_id, acked_at) VALUES (?, ?, ${nowMsSql(this.db.engine)}) ON CONFLICT DO NOTHING`, [commandId, nodeId])
  }

  /** The nodes that acked a command. */
  acks(commandId: number): string[] {
    return this.db.all<{node_id: string}>('SELECT node_id FROM cluster_command_acks WHERE command_id = ? ORDER BY node_id', [commandId]).map((r) => r.node_id)
  }
}
