import {EventEmitter} from 'node:events'
import {readFileSync} from 'node:fs'
import {MessageChannel, type MessagePort, receiveMessageOnPort, Worker} from 'node:worker_threads'

import {H2KError} from '@hyper2kvm/plugin-api'
import {registerSecret} from '../secrets/redact.js'
import {toPositional} from './placeholders.js'
import {SIGNAL, type ThreadAnswer, type ThreadError, type ThreadOptions, type ThreadRequest, type ThreadTls, type ThreadWakeup} from './postgres-protocol.js'
import {parsePostgresUrl} from './postgres-url.js'
import type {RunResult, SqlDb, SqlValue} from './sql-db.js'
import type {PostgresSettings, PostgresTlsSettings} from './store-target.js'

/** Run from source (tests, under tsx): the driver thread needs the same TypeScript loader. */
const FROM_SOURCE = import.meta.url.endsWith('.ts')
const THREAD_URL = new URL(`postgres-thread${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url)

/** LISTEN channel names: plain identifiers (they are quoted into LISTEN statements). */
const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/

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
 * A loopback round trip blocks the event loop for a fraction of a millisecond; while the server is down
 * or restarting, a statement outside a transaction (or a BEGIN) blocks the event loop until the server is
 * back or connect_timeout has passed (then H2K_STORE_UNAVAILABLE): nothing else of the process runs
 * meanwhile — the store is the daemon's source of truth, and there is nothing useful to do without it.
 * A connection lost inside a transaction is never replayed: the transaction is over (rolled back by the
 * server, or of unknown outcome for a lost COMMIT) and H2K_STORE_UNAVAILABLE is thrown.
 */
export class PostgresDb implements SqlDb {
  readonly engine = 'postgres' as const
  private readonly translated = new Map<string, string>()
  private readonly wakeups = new EventEmitter()
  /** Open transaction levels: 0 none, 1 the transaction, 2+ savepoints inside it. */
  private depth = 0
  private closed = false

  private constructor(
    readonly location: string,
    private readonly worker: Worker,
    private readonly port: MessagePort,
    private readonly signal: Int32Array,
    /** Scrubbed from every message this class builds (the driver's own messages never carry it, but belt and braces). */
    private readonly password: string | undefined,
  ) {
    worker.on('message', (message: ThreadWakeup) => {
      if (typeof message.wake === 'string') this.wakeups.emit(message.wake)
    })
    // The thread failed outside a request (its own handler marked it DEAD): the next call reports it.
    worker.on('error', () => Atomics.store(signal, 0, SIGNAL.DEAD))
  }

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
      connection: {database: address.database, host: address.host, port: address.port, ssl: tlsOptions(settings.ssl), user: address.user, ...(password === undefined ? {} : {password})},
      connectTimeoutMs: settings.connectTimeoutMs,
      poolSize: settings.poolSize,
    }
    const {port1, port2} = new MessageChannel()
    const signal = new SharedArrayBuffer(4)
    // From source, the thread first registers tsx's loader, then imports the TypeScript entry.
    const entry = FROM_SOURCE ? `import('tsx/esm/api').then((tsx) => tsx.register()).then(() => import(${JSON.stringify(THREAD_URL.href)}))` : THREAD_URL
    const worker = new Worker(entry, {eval: FROM_SOURCE, transferList: [port2], workerData: {options, port: port2, signal}})
    // The thread never keeps the process alive by itself (a CLI command that forgot close() still exits).
    worker.unref()
    const db = new PostgresDb(address.location, worker, port1, new Int32Array(signal), password)
    try {
      db.call({op: 'connect'})
    } catch (error) {
      db.close()
      throw error
    }
    return db
  }

  get open(): boolean {
    return !this.closed
  }

  private call(request: ThreadRequest): {rows: unknown[]; changes: number} {
    if (this.closed) throw new H2KError('H2K_STORE_FAILED', `The job store connection (${this.location}) is closed.`, {details: {location: this.location}})
    // The previous answer taken, ready for the next; a thread that died stays DEAD (nobody would answer).
    Atomics.compareExchange(this.signal, 0, SIGNAL.ANSWERED, SIGNAL.IDLE)
    if (Atomics.load(this.signal, 0) === SIGNAL.DEAD) {
      const last = receiveMessageOnPort(this.port)?.message as ThreadAnswer | undefined
      throw this.failure(last !== undefined && !last.ok ? last.error : {kind: 'unavailable', message: 'the PostgreSQL driver thread has ended'})
    }
    this.port.postMessage(request)
    // The thread answers every request (its own waits are bounded by connect_timeout), or marks itself DEAD.
    while (Atomics.load(this.signal, 0) === SIGNAL.IDLE) Atomics.wait(this.signal, 0, SIGNAL.IDLE)
    const answer = receiveMessageOnPort(this.port)?.message as ThreadAnswer | undefined
    if (answer === undefined) throw new H2KError('H2K_INTERNAL', `The PostgreSQL driver thread of ${this.location} gave no answer.`)
    if (!answer.ok) throw this.failure(answer.error)
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
    if (error instanceof H2KError && error.code === 'H2K_STORE_UNAVAILABLE') {
      this.call({op: 'rollback'})
      return
    }
    try {
      this.call({op: 'rollback'})
    } catch (rollbackError) {
      // Reported with the original error: the caller sees what went wrong first.
      if (error instanceof Error) (error as Error & {rollbackError?: unknown}).rollbackError = rollbackError
    }
  }

  listen(channel: string, listener: () => void): () => void {
    if (!CHANNEL.test(channel)) throw new H2KError('H2K_INTERNAL', `"${channel}" is not a notification channel name (lower-case letters, digits, _).`)
    if (this.wakeups.listenerCount(channel) === 0) this.call({channel, op: 'listen'})
    this.wakeups.on(channel, listener)
    return () => {
      this.wakeups.off(channel, listener)
      if (this.wakeups.listenerCount(channel) === 0 && !this.closed) this.call({channel, op: 'unlisten'})
    }
  }

  /** pg_notify: inside a transaction, delivered when it commits (to this connection's listeners too). */
  notify(channel: string): void {
    this.run('SELECT pg_notify(?, ?)', [channel, ''])
  }

  close(): void {
    if (this.closed) return
    try {
      this.call({op: 'close'})
    } finally {
      this.closed = true
      this.wakeups.removeAllListeners()
      this.port.close()
      void this.worker.terminate()
    }
  }
}

/** A result that is a promise is a bug: the statements of the transaction would run after its COMMIT. */
function settled<T>(result: T): T {
  if (typeof (result as {then?: unknown} | undefined)?.then === 'function') throw new H2KError('H2K_INTERNAL', 'A store transaction function returned a promise; it must be synchronous.')
  return result
}

/**
 * node:tls options for `pg`, the files read now (a missing one is a configuration error naming its key).
 * verify-full: `pg` checks the certificate's name against the URL's host (SNI only for a host name).
 */
function tlsOptions(ssl: PostgresTlsSettings): false | ThreadTls {
  if (ssl.mode === 'disable') return false
  const read = (key: string, path: string | undefined): string | undefined => {
    if (path === undefined) return undefined
    try {
      return readFileSync(path, 'utf8')
    } catch (error) {
      throw new H2KError('H2K_USAGE', `store.ssl.${key}: ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`, {cause: error, details: {key: `store.ssl.${key}`, path}})
    }
  }
  const ca = read('ca_file', ssl.caFile)
  const cert = read('cert_file', ssl.certFile)
  const key = read('key_file', ssl.keyFile)
  const verify = ssl.mode === 'verify-full'
  return {
    rejectUnauthorized: verify,
    ...(ca === undefined ? {} : {ca}),
    ...(cert === undefined ? {} : {cert}),
    ...(key === undefined ? {} : {key}),
  }
}
