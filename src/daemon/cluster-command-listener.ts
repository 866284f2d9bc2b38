import {mapForeignError} from '../errors/map-foreign-error.js'
import type {SqlDb} from '../store/sql-db.js'
import {CLUSTER_COMMAND_CHANNEL, type ClusterCommand, ClusterCommands} from './cluster-commands.js'
import type {ControlReply} from './control-server.js'
import type {DaemonLogFn} from './daemon-pieces.js'

export interface ClusterListenerContext {
  sql: SqlDb
  nodeId: string
  /** Apply a command as the control socket would (the daemon's own answer, with what runs after it). */
  apply: (command: ClusterCommand) => ControlReply
  log: DaemonLogFn
  /** How often to look for commands besides the NOTIFY wake-ups (a notification lost while the store was away). */
  pollMs: number
}

/**
 * A daemon's ear for `ctl … --all`: commands written to the store after this daemon started are applied
 * once each, in order, and acked; woken by NOTIFY on PostgreSQL, and by a poll every heartbeat.
 */
export class ClusterCommandListener {
  private readonly commands: ClusterCommands
  /** The last command id handled (or seen at start): nothing at or before it is applied. */
  private since: number
  private timer?: NodeJS.Timeout
  private unlisten?: () => void
  private closed = false

  private constructor(private readonly ctx: ClusterListenerContext) {
    this.commands = new ClusterCommands(ctx.sql)
    this.since = this.commands.latestId()
  }

  static start(ctx: ClusterListenerContext): ClusterCommandListener {
    const listener = new ClusterCommandListener(ctx)
    listener.unlisten = ctx.sql.listen(CLUSTER_COMMAND_CHANNEL, () => listener.check())
    listener.timer = setInterval(() => listener.check(), ctx.pollMs)
    listener.timer.unref()
    return listener
  }

  /** Apply what is pending (each command is acked before what runs after its answer: a stop closes the store). */
  check(): void {
    if (this.closed) return
    const {log, nodeId} = this.ctx
    let pending
    try {
      pending = this.commands.pending(nodeId, this.since)
    } catch (error) {
      log('debug', 'cluster:commands-unreadable', {}, mapForeignError(error).message)
      return
    }
    for (const row of pending) {
      if (this.closed) return
      this.since = Math.max(this.since, row.id)
      log('info', 'cluster:command', {command: row.command, id: row.id, issued_by: row.issued_by})
      const reply = this.ctx.apply(row.command)
      try {
        this.commands.ack(row.id, nodeId)
      } catch (error) {
        log('warn', 'cluster:ack-failed', {id: row.id}, mapForeignError(error).message)
      }
      reply.after?.()
    }
  }

  close(): void {
    this.closed = true
    clearInterval(this.timer)
    this.unlisten?.()
  }
}
