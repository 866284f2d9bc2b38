import {EventEmitter} from 'node:events'

import {H2KError} from '@hyper2kvm/plugin-api'
import {registerSecret} from '../secrets/redact.js'
import {toPositional} from './placeholders.js'
import {DriverThread, type ThreadReply} from './postgres-driver-thread.js'
import type {ThreadError, ThreadOptions, ThreadRequest} from './postgres-protocol.js'
import {readTls} from './postgres-tls.js'
import {parsePostgresUrl} from './postgres-url.js'
import type {RunResult, SqlDb, SqlValue} from './sql-db.js'
import {POSTGRES_DEFAULTS} from './store-config.js'
import type {PostgresSettings} from './store-target.js'

/** LISTEN channel names: plain identifiers (they are quoted into LISTEN statements). */
const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/
/** The main thread's backstop beyond the thread's own bound: the thread answers within its bound unless it hangs or died. */
const BACKSTOP_MARGIN_MS = 2000
/** close() waits this long for a polite shutdown, then stops the thread. */
const CLOSE_BACKSTOP_MS = 3000

/** SQL the server refused (a constraint, a syntax error): mapped to H2K_STORE_FAILED by mapForeignError. */
export class PostgresError extends Error {
  override readonly name = 'PostgresError'
  constructor(
    message: string,
    /** The SQLSTATE (23505 unique violation, 42P01 undefined table…). */
    readonly code: string | undefined,
  ) {
    super(message)
  }
}

/**
 * The PostgreSQL engine: the `pg` driver runs on its own thread (postgres-thread.ts) and every call here
 * blocks until that thread answers (Atomics.wait), which keeps SqlDb synchronous like better-sqlite3.
 * A loopback round trip blocks the event loop for a fraction of a millisecond. Every call is bounded by B
 * (`store.statement_timeout`, default 5 s: a pool connection, the statement, any retries while the server
 * restarts); the open by connect_timeout. A call that failed because the server did not answer opens a
 * breaker: the next calls fail at once with H2K_STORE_UNAVAILABLE until a background probe gets through,
 * so a daemon cut off from its store keeps running its timers and signals. A connection lost inside a
 * transaction is never replayed: the transaction is over (rolled back by the server, or of unknown outcome
 * for a lost COMMIT) and H2K_STORE_UNAVAILABLE is thrown. A driver thread that hangs past its backstop or
 * dies is stopped, and the next call starts a new one (listening again on the same channels).
 */
export class PostgresDb implements SqlDb {
  readonly engine = 'postgres' as const
  private readonly translated = new Map<string, string>()
  private readonly wakeups = new EventEmitter()
  /** Open transaction levels: 0 none, 1 the transaction, 2+ savepoints inside it. */
  private depth = 0
  private closed = false
  private thread: DriverThread | undefined
  /** The thread the open transaction began on: a new thread knows nothing of it (the transaction is lost). */
  private transactionThread: DriverThread | undefined

  private constructor(
    readonly location: string,
    private readonly options: ThreadOptions,
    /** Scrubbed from every message this class builds (the driver's own messages never carry it, but belt and braces). */
    private readonly password: string | undefined,
  ) {}

  /** The URL of a store without its password (for messages before it is opened). */
  static locationOf(settings: PostgresSettings): string {
    return parsePostgresUrl(settings.url).location
  }

  /** Connect (waiting up to connect_timeout for a server that is starting): H2K_STORE_UNAVAILABLE when it cannot be reached. */
  static open(settings: PostgresSettings): PostgresDb {
    const address = parsePostgresUrl(settings.url)
    const password = settings.password ?? address.password
    if (password !== undefined) registerSecret(password)
    const options: ThreadOptions = {
      applicationName: 'hyper2kvm',
      channels: [],
      connection: {database: address.database, host: address.host, port: address.port, ssl: readTls(settings.ssl), user: address.user, ...(password === undefined ? {} : {password})},
      connectTimeoutMs: settings.connectTimeoutMs,
      poolSize: settings.poolSize,
      statementTimeoutMs: settings.statementTimeoutMs ?? POSTGRES_DEFAULTS.statementTimeoutMs,
    }
    const db = new PostgresDb(address.location, options, password)
    try {
      db.call({op: 'connect'}, settings.connectTimeoutMs)
    } catch (error) {
      db.close()
      throw error
    }
    return db
  }

  get open(): boolean {
    return !this.closed
  }

  /** The driver thread, a new one if there is none (or the last one died): it listens again on the channels listened on. */
  private driver(): DriverThread {
    if (this.thread?.usable) return this.thread
    this.thread?.terminate()
    const channels = this.wakeups.eventNames().filter((name): name is string => typeof name === 'string' && this.wakeups.listenerCount(name) > 0)
    this.thread = DriverThread.start({...this.options, channels}, (channel) => this.wakeups.emit(channel))
    return this.thread
  }

  private call(request: ThreadRequest, boundMs = this.options.statementTimeoutMs): {rows: unknown[]; changes: number} {
    if (this.closed) throw new H2KError('H2K_STORE_FAILED', `The job store connection (${this.location}) is closed.`, {details: {location: this.location}})
    const ending = request.op === 'commit' || request.op === 'rollback'
    const began = this.transactionThread
    if (ending) this.transactionThread = undefined
    if (began !== undefined && !(began === this.thread && began.usable)) {
      // The thread of this transaction died or was stopped: the transaction is over (rolled back by the server when its connection closed).
      if (request.op === 'rollback') return {changes: 0, rows: []}
      throw this.failure({kind: 'unavailable', message: 'the driver thread of this transaction was stopped', unknownOutcome: true})
    }
    const thread = this.driver()
    const answer: ThreadReply = thread.call(request, boundMs + BACKSTOP_MARGIN_MS)
    if (!answer.ok) throw this.failure(answer.error)
    if (request.op === 'begin') this.transactionThread = thread
    return answer
  }

  private scrub(text: string): string {
    return this.password === undefined || this.password === '' ? text : text.replaceAll(this.password, '***')
  }

  private failure(error: ThreadError): Error {
    const message = this.scrub(error.message)
    if (error.kind === 'sql') return new PostgresError(message, error.code)
    const lost = error.unknownOutcome
      ? ' The connection was lost while writing; the statement was not repeated (its transaction was rolled back by the server, or, for a lost COMMIT, its outcome is unknown).'
      : ''
    return new H2KError('H2K_STORE_UNAVAILABLE', `The job store at ${this.location} cannot be reached: ${message}.${lost}`, {
      details: {location: this.location, ...(error.code === undefined ? {} : {code: error.code}), ...(error.unknownOutcome ? {unknownOutcome: true} : {})},
    })
  }

  private positional(sql: string): string {
    let text = this.translated.get(sql)
    if (text === undefined) {
      text = toPositional(sql)
      // Dynamic IN lists make many shapes of one statement: keep the cache bounded.
      if (this.translated.size >= 2000) this.translated.clear()
      this.translated.set(sql, text)
    }
    return text
  }

  run(sql: string, params: readonly SqlValue[] = []): RunResult {
    return {changes: this.call({op: 'query', params, rows: false, sql: this.positional(sql)}).changes}
  }

  get<T>(sql: string, params: readonly SqlValue[] = []): T | undefined {
    return this.call({op: 'query', params, rows: true, sql: this.positional(sql)}).rows[0] as T | undefined
  }

  all<T>(sql: string, params: readonly SqlValue[] = []): T[] {
    return this.call({op: 'query', params, rows: true, sql: this.positional(sql)}).rows as T[]
  }

  /** Several statements, no parameters (the simple query protocol: no placeholder translation). */
  exec(sql: string): void {
    this.call({op: 'query', params: [], rows: false, sql})
  }

  transaction<T>(fn: () => T): T {
    if (this.depth === 0) {
      this.call({op: 'begin'})
      this.depth = 1
      let result: T
      try {
        result = settled(fn())
      } catch (error) {
        this.depth = 0
        this.rollbackAfter(error)
        throw error
      }
      this.depth = 0
      this.call({op: 'commit'})
      return result
    }
    const savepoint = `h2k_savepoint_${this.depth}`
    this.exec(`SAVEPOINT ${savepoint}`)
    this.depth++
    let result: T
    try {
      result = settled(fn())
    } catch (error) {
      this.depth--
      this.undo(savepoint, error)
      throw error
    }
    this.depth--
    this.exec(`RELEASE SAVEPOINT ${savepoint}`)
    return result
  }

  /**
   * Back to the savepoint after a nested `fn` threw (the outer transaction goes on). Not when the connection
   * is gone: the whole transaction is over, and the error of `fn` says so.
   */
  private undo(savepoint: string, error: unknown): void {
    if (error instanceof H2KError && error.code === 'H2K_STORE_UNAVAILABLE') return
    this.exec(`ROLLBACK TO SAVEPOINT ${savepoint}; RELEASE SAVEPOINT ${savepoint}`)
  }

  /** ROLLBACK after `fn` threw; the error of `fn` is the one reported (a failed ROLLBACK means the connection is gone, and the server has rolled back). */
  private rollbackAfter(error: unknown): void {
    try {
      this.call({op: 'rollback'})
    } catch (rollbackError) {
      // Reported with the original error: the caller sees what went wrong first (a lost connection needs no other word).
      const lost = error instanceof H2KError && error.code === 'H2K_STORE_UNAVAILABLE'
      if (!lost && error instanceof Error) (error as Error & {rollbackError?: unknown}).rollbackError = rollbackError
    }
  }


  listen(channel: string, listener: () => void): () => void {
    if (!CHANNEL.test(channel)) throw new H2KError('H2K_INTERNAL', `"${channel}" is not a notification channel name (lower-case letters, digits, _).`)
    if (this.wakeups.listenerCount(channel) === 0) this.call({channel, op: 'listen'})
    this.wakeups.on(channel, listener)
    return () => {
      this.wakeups.off(channel, listener)
      if (this.wakeups.listenerCount(channel) === 0 && !this.closed) {
        try {
          this.call({channel, op: 'unlisten'})
        } catch {
          // The thread is gone (a new one will not listen on it) or the store cannot be reached: nothing listens any more either way.
        }
      }
    }
  }

  /** pg_notify: inside a transaction, delivered when it commits (to this connection's listeners too). */
  notify(channel: string): void {
    this.run('SELECT pg_notify(?, ?)', [channel, ''])
  }

  /** Bounded (a few seconds), never throws, leaves no thread or connection behind. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.wakeups.removeAllListeners()
    const thread = this.thread
    this.thread = undefined
    if (thread?.usable) thread.call({op: 'close'}, CLOSE_BACKSTOP_MS)
    thread?.terminate()
  }
}

/** A result that is a promise is a bug: the statements of the transaction would run after its COMMIT. */
function settled<T>(result: T): T {
  if (typeof (result as {then?: unknown} | undefined)?.then === 'function') throw new H2KError('H2K_INTERNAL', 'A store transaction function returned a promise; it must be synchronous.')
  return result
}
