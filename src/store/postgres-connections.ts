/**
 * The driver thread's connections to PostgreSQL: the pool of the statements, and the settings every client
 * (pool, LISTEN, probe) shares: TCP keepalive, server-side statement_timeout and lock_timeout = B,
 * idle_in_transaction_session_timeout a few B. Every wait is bounded by a Deadline: a pool connection is
 * waited for at most the time left (a connection that arrives late is given back), a query is cancelled on
 * the client side when the time left has passed (its connection is then destroyed, never reused).
 */
import pg from 'pg'

import {backoffMs, deadlinePassed, isConnectionError, isRefusedConnection, sleep, unavailable} from './postgres-failures.js'
import type {ThreadOptions} from './postgres-protocol.js'
import {tlsConnectionOptions} from './postgres-tls.js'

/** The end of one call: `at` (ms epoch), and the bound it came from (for the message). */
export interface Deadline {
  at: number
  boundMs: number
}

export const deadlineIn = (boundMs: number): Deadline => ({at: Date.now() + boundMs, boundMs})
export const timeLeft = (deadline: Deadline): number => deadline.at - Date.now()

/** Beyond the time left, for the server's own statement_timeout (a clearer verdict: the server is alive) to answer first. */
const QUERY_GRACE_MS = 250
/** The idle connection of an open transaction is ended by the server after this many B (the main thread died mid-transaction). */
const IDLE_IN_TRANSACTION_FACTOR = 4

/** int8 (COUNT, BIGINT ms epochs) and numeric (SUM of a bigint) as JS numbers: every value the store keeps fits in 2^53. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 || oid === 1700) return (value: string | null) => (value === null ? null : Number(value))
    return pg.types.getTypeParser(oid, format)
  },
}

export class Connections {
  /** Settings of every client; `connectionTimeoutMillis` bounds one connection attempt. */
  readonly clientConfig: pg.ClientConfig
  private pool: pg.Pool

  constructor(private readonly options: ThreadOptions) {
    const bound = options.statementTimeoutMs
    this.clientConfig = {
      application_name: options.applicationName,
      connectionTimeoutMillis: Math.max(bound, Math.min(options.connectTimeoutMs, 10_000)),
      database: options.connection.database,
      host: options.connection.host,
      idle_in_transaction_session_timeout: Math.max(1000, bound * IDLE_IN_TRANSACTION_FACTOR),
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      lock_timeout: bound,
      password: options.connection.password,
      port: options.connection.port,
      ssl: tlsConnectionOptions(options.connection.ssl),
      statement_timeout: bound,
      types,
      user: options.connection.user,
    }
    this.pool = this.newPool()
  }

  private newPool(): pg.Pool {
    const pool = new pg.Pool({...this.clientConfig, idleTimeoutMillis: 30_000, max: this.options.poolSize})
    // An idle client whose server went away: the pool drops it and the next statement connects anew; nothing to do here.
    pool.on('error', () => undefined)
    // A checked-out client (a pinned transaction) whose server went away emits 'error' too: its next query fails, and that is where it is reported.
    pool.on('connect', (client) => client.on('error', () => undefined))
    return pool
  }

  /**
   * Drop every connection of the pool (the road to the server was found broken: an idle connection may be
   * dead without knowing it) and start a new one. Checked-out clients are released by their callers.
   */
  reset(): void {
    const old = this.pool
    this.pool = this.newPool()
    void old.end().catch(() => undefined)
  }

  /** A client from the pool, waiting (with backoff, each attempt bounded by the time left) until `deadline` while the server cannot be reached. */
  async acquire(deadline: Deadline, stopping: () => boolean): Promise<pg.PoolClient> {
    let last: unknown
    for (let attempt = 0; ; attempt++) {
      const left = timeLeft(deadline)
      if (left <= 0 || stopping()) throw deadlinePassed(deadline.boundMs, last)
      try {
        return await connectWithin(this.pool, left)
      } catch (error) {
        if (error === TIMED_OUT) throw deadlinePassed(deadline.boundMs, last)
        if (isRefusedConnection(error)) throw unavailable(error, {opens: false})
        if (!isConnectionError(error)) throw unavailable(error)
        last = error
      }
      await sleep(Math.min(backoffMs(attempt), timeLeft(deadline)))
    }
  }

  /** One query on `client`, cancelled on this side once `deadline` (plus a little grace) has passed. */
  async query(client: pg.PoolClient, text: string, values: readonly unknown[], deadline: Deadline): Promise<pg.QueryResult> {
    const left = timeLeft(deadline)
    if (left <= 0) throw deadlinePassed(deadline.boundMs)
    // pg takes query_timeout per query (its types know it only on the client's settings).
    return client.query({query_timeout: left + QUERY_GRACE_MS, text, values: values as unknown[]} as pg.QueryConfig)
  }

  async end(): Promise<void> {
    await this.pool.end()
  }
}

const TIMED_OUT = Symbol('timed out')

/** pool.connect() bounded by `ms`; a client that arrives after that is given back (destroyed) at once. */
async function connectWithin(pool: pg.Pool, ms: number): Promise<pg.PoolClient> {
  let timer: NodeJS.Timeout | undefined
  let late = false
  const attempt = pool.connect()
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = true
      reject(TIMED_OUT)
    }, ms)
  })
  try {
    return await Promise.race([attempt, timeout])
  } finally {
    clearTimeout(timer)
    if (late) attempt.then((client) => client.release(new Error('abandoned: the call had given up')), () => undefined)
  }
}
