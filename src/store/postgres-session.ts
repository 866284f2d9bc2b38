/**
 * The statements of the driver thread, each bounded by its Deadline: one outside a transaction (or a BEGIN)
 * waits for a server that is down or restarting, up to its deadline, and runs again on a new connection only
 * when that cannot change anything (replay-policy.ts); a connection lost inside a transaction is reported,
 * never replayed (its outcome is unknown), and the transaction stays lost until the main thread ends it.
 */
import type pg from 'pg'

import {type Connections, type Deadline, timeLeft} from './postgres-connections.js'
import {backoffMs, classify, codeOf, deadlinePassed, isConnectionError, refused, SERVER_GOING, sleep, type ThreadFailure, unavailable} from './postgres-failures.js'
import {isReplayable} from './replay-policy.js'

export class Session {
  private pinned: pg.PoolClient | undefined
  /** The open transaction's connection was lost: its statements fail until the main thread ends it (never run outside it). */
  private lost = false
  private closing = false

  constructor(private readonly connections: Connections) {}

  /** Inside a transaction (open, or lost and not yet ended by the main thread). */
  get inTransaction(): boolean {
    return this.pinned !== undefined || this.lost
  }

  private readonly stopping = (): boolean => this.closing

  /** A statement: in the open transaction if there is one, else on its own. */
  async query(sql: string, params: readonly unknown[], deadline: Deadline): Promise<pg.QueryResult> {
    if (this.lost) throw lostTransaction()
    return this.pinned ? this.inPinned(this.pinned, sql, params, deadline) : this.autocommit(sql, params, deadline)
  }

  private async autocommit(sql: string, params: readonly unknown[], deadline: Deadline): Promise<pg.QueryResult> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.connections.acquire(deadline, this.stopping)
      let result: pg.QueryResult
      try {
        result = await this.connections.query(client, sql, params, deadline)
      } catch (error) {
        const failure = classify(error, true)
        if (!isConnectionError(error)) {
          // Refused SQL, or the server's own timeout: the connection is fine.
          client.release()
          throw failure
        }
        client.release(error instanceof Error ? error : true)
        // 57P0x: the server terminated the backend before the statement committed. A plain read changes nothing.
        if (!(SERVER_GOING.has(codeOf(error) ?? '') || isReplayable(sql))) throw failure
        if (this.closing || timeLeft(deadline) <= 0) throw deadlinePassed(deadline.boundMs, error)
        await sleep(Math.min(backoffMs(attempt), timeLeft(deadline)))
        continue
      }
      client.release()
      return result
    }
  }

  async begin(deadline: Deadline): Promise<void> {
    if (this.pinned) throw refused(new Error('a transaction is already open on this connection'))
    this.lost = false
    for (let attempt = 0; ; attempt++) {
      const client = await this.connections.acquire(deadline, this.stopping)
      try {
        await this.connections.query(client, 'BEGIN', [], deadline)
        this.pinned = client
        return
      } catch (error) {
        client.release(error instanceof Error ? error : true)
        // BEGIN changes nothing: run it again on a new connection.
        if (!isConnectionError(error)) throw classify(error)
        if (this.closing || timeLeft(deadline) <= 0) throw deadlinePassed(deadline.boundMs, error)
        await sleep(Math.min(backoffMs(attempt), timeLeft(deadline)))
      }
    }
  }

  /** A statement inside the open transaction: a lost connection (or one that did not answer in time) ends it. */
  private async inPinned(client: pg.PoolClient, sql: string, params: readonly unknown[], deadline: Deadline): Promise<pg.QueryResult> {
    try {
      return await this.connections.query(client, sql, params, deadline)
    } catch (error) {
      if (!isConnectionError(error)) throw classify(error)
      this.pinned = undefined
      this.lost = true
      client.release(error instanceof Error ? error : true)
      throw unavailable(error, {unknownOutcome: true})
    }
  }

  async finish(command: 'COMMIT' | 'ROLLBACK', deadline: Deadline): Promise<void> {
    const client = this.pinned
    if (!client) {
      const wasLost = this.lost
      this.lost = false
      // ROLLBACK after the connection was lost: the server has rolled it back already.
      if (command === 'ROLLBACK') return
      throw wasLost ? lostTransaction() : refused(new Error('COMMIT without an open transaction'))
    }
    this.pinned = undefined
    try {
      await this.connections.query(client, command, [], deadline)
      client.release()
    } catch (error) {
      const broken = isConnectionError(error)
      client.release(broken && error instanceof Error ? error : broken)
      if (command === 'ROLLBACK' && broken) return
      throw broken ? unavailable(error, {unknownOutcome: true}) : classify(error)
    }
  }

  /** Roll back an open transaction (bounded) and stop retrying. */
  async close(deadline: Deadline): Promise<void> {
    this.closing = true
    const open = this.pinned
    this.pinned = undefined
    if (!open) return
    await this.connections.query(open, 'ROLLBACK', [], deadline).then(
      () => open.release(),
      (error: unknown) => open.release(error instanceof Error ? error : true),
    )
  }
}

/** A statement of a transaction whose connection is gone: refused, never run on another connection. */
function lostTransaction(): ThreadFailure {
  return unavailable(new Error('the connection of this transaction was lost'), {opens: false, unknownOutcome: true})
}
