/**
 * The PostgreSQL driver thread of PostgresDb: the `pg` pool lives here, on this thread's event loop, while
 * the main thread waits synchronously for each answer (see postgres-protocol.ts). It also holds the LISTEN
 * connection, posting wake-ups to the main thread, and does the reconnecting: a statement outside a
 * transaction (or a BEGIN) waits for a server that is down or restarting, up to connect_timeout; a
 * connection lost inside a transaction is reported (never replayed: its outcome is unknown).
 */
import {type MessagePort, parentPort, workerData} from 'node:worker_threads'

import pg from 'pg'

import {SIGNAL, type ThreadAnswer, type ThreadError, type ThreadOptions, type ThreadRequest, type ThreadWakeup} from './postgres-protocol.js'

const {options, port, signal: sab} = workerData as {options: ThreadOptions; port: MessagePort; signal: SharedArrayBuffer}
const signal = new Int32Array(sab)

/** Node error codes of a server that cannot be reached (yet). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED'])
/** SQLSTATEs of a server shutting down or starting up: the statement was not run (or rolled back); safe to run again. */
const SERVER_GOING = new Set(['57P01', '57P02', '57P03'])
/** pg's own messages for a connection that broke or could not be made. */
const BROKEN = /connection terminated|connection timeout|timeout exceeded when trying to connect|client has encountered a connection error|not queryable|connection ended/i

/** Waits between two connection attempts: short first (a restart takes about a second), then at most 1 s. */
const BACKOFF_MS = [50, 100, 200, 400, 800, 1000]

/** int8 (COUNT, BIGINT ms epochs) and numeric (SUM of a bigint) as JS numbers: every value the store keeps fits in 2^53. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 || oid === 1700) return (value: string | null) => (value === null ? null : Number(value))
    return pg.types.getTypeParser(oid, format)
  },
}

const connectionConfig = {
  application_name: options.applicationName,
  connectionTimeoutMillis: Math.min(options.connectTimeoutMs, 10_000),
  database: options.connection.database,
  host: options.connection.host,
  password: options.connection.password,
  port: options.connection.port,
  ssl: options.connection.ssl,
  types,
  user: options.connection.user,
}

const pool = new pg.Pool({...connectionConfig, idleTimeoutMillis: 30_000, max: options.poolSize})
// An idle client whose server went away: the pool drops it and the next statement connects anew; nothing to do here.
pool.on('error', () => undefined)
// A checked-out client (a pinned transaction) whose server went away emits 'error' too: its next query fails, and that is where it is reported.
pool.on('connect', (client) => client.on('error', () => undefined))

let pinned: pg.PoolClient | undefined
/** The open transaction's connection was lost: its statements fail until the main thread ends it (never run outside it). */
let lost = false
let closing = false

const codeOf = (error: unknown): string | undefined => {
  const code = (error as {code?: unknown}).code
  return typeof code === 'string' ? code : undefined
}

function isConnectionError(error: unknown): boolean {
  const code = codeOf(error)
  if (code !== undefined && (UNREACHABLE.has(code) || SERVER_GOING.has(code) || code.startsWith('08') || code === '53300')) return true
  return error instanceof Error && BROKEN.test(error.message)
}

/** Authentication and a missing database: the store cannot be used, and waiting will not change that. */
function isRefusedConnection(error: unknown): boolean {
  const code = codeOf(error)
  return code !== undefined && (code.startsWith('28') || code === '3D000')
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

class ThreadFailure extends Error {
  constructor(readonly failure: ThreadError) {
    super(failure.message)
  }
}

function unavailable(error: unknown, unknownOutcome = false): ThreadFailure {
  const message = error instanceof Error ? error.message : String(error)
  return new ThreadFailure({code: codeOf(error), kind: 'unavailable', message, ...(unknownOutcome ? {unknownOutcome} : {})})
}

function refused(error: unknown): ThreadFailure {
  const message = error instanceof Error ? error.message : String(error)
  return new ThreadFailure({code: codeOf(error), kind: 'sql', message})
}

/** A client from the pool, waiting (with backoff) until `deadline` while the server cannot be reached. */
async function acquire(deadline: number): Promise<pg.PoolClient> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await pool.connect()
    } catch (error) {
      if (isRefusedConnection(error) || !isConnectionError(error)) throw unavailable(error)
      if (closing || Date.now() >= deadline) throw unavailable(error)
      await sleep(Math.min(BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]!, Math.max(0, deadline - Date.now())))
    }
  }
}

/** Whether running `sql` again cannot change anything (a read): a broken connection may then be retried blindly. */
const READ_ONLY = /^\s*(SELECT|VALUES|SHOW)\b/i

/** One statement outside a transaction: waits for the server (connect_timeout), runs it again only when that is safe. */
async function autocommit(sql: string, params: readonly unknown[]): Promise<pg.QueryResult> {
  const deadline = Date.now() + options.connectTimeoutMs
  for (let attempt = 0; ; attempt++) {
    const client = await acquire(deadline)
    try {
      const result = await client.query({text: sql, values: params as unknown[]})
      client.release()
      return result
    } catch (error) {
      if (!isConnectionError(error)) {
        client.release()
        throw refused(error)
      }
      client.release(error instanceof Error ? error : true)
      // 57P0x: the server terminated the backend before the statement committed. A read changes nothing.
      const safe = SERVER_GOING.has(codeOf(error) ?? '') || READ_ONLY.test(sql)
      if (!safe) throw unavailable(error, true)
      if (closing || Date.now() >= deadline) throw unavailable(error)
      await sleep(BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]!)
    }
  }
}

async function begin(): Promise<void> {
  if (pinned) throw refused(new Error('a transaction is already open on this connection'))
  lost = false
  const deadline = Date.now() + options.connectTimeoutMs
  for (let attempt = 0; ; attempt++) {
    const client = await acquire(deadline)
    try {
      await client.query('BEGIN')
      pinned = client
      return
    } catch (error) {
      client.release(error instanceof Error ? error : true)
      // BEGIN changes nothing: run it again on a new connection.
      if (!isConnectionError(error)) throw refused(error)
      if (closing || Date.now() >= deadline) throw unavailable(error)
      await sleep(BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]!)
    }
  }
}

/** A statement inside the open transaction: a lost connection ends it (the server rolls it back). */
async function inTransaction(client: pg.PoolClient, sql: string, params: readonly unknown[]): Promise<pg.QueryResult> {
  try {
    return await client.query({text: sql, values: params as unknown[]})
  } catch (error) {
    if (!isConnectionError(error)) throw refused(error)
    pinned = undefined
    lost = true
    client.release(error instanceof Error ? error : true)
    throw unavailable(error, true)
  }
}

/** A statement of a transaction whose connection is gone: refused, never run on another connection. */
function lostTransaction(): ThreadFailure {
  return unavailable(new Error('the connection of this transaction was lost'), true)
}

async function finish(command: 'COMMIT' | 'ROLLBACK'): Promise<void> {
  const client = pinned
  if (!client) {
    const wasLost = lost
    lost = false
    // ROLLBACK after the connection was lost: the server has rolled it back already.
    if (command === 'ROLLBACK') return
    throw wasLost ? lostTransaction() : refused(new Error('COMMIT without an open transaction'))
  }
  pinned = undefined
  try {
    await client.query(command)
    client.release()
  } catch (error) {
    client.release(error instanceof Error ? error : true)
    if (command === 'ROLLBACK' && isConnectionError(error)) return
    throw isConnectionError(error) ? unavailable(error, true) : refused(error)
  }
}

// ---- LISTEN: one dedicated connection, re-made after it breaks (a server restart) -------------------------

const channels = new Set<string>()
let listener: pg.Client | undefined
let listenerConnecting: Promise<pg.Client> | undefined
let reconnectTimer: NodeJS.Timeout | undefined

const quoted = (channel: string): string => `"${channel.replaceAll('"', '""')}"`
const wake = (channel: string): void => parentPort!.postMessage({wake: channel} satisfies ThreadWakeup)

async function connectListener(deadline: number): Promise<pg.Client> {
  for (let attempt = 0; ; attempt++) {
    const client = new pg.Client(connectionConfig)
    client.on('error', () => dropListener(client))
    client.on('end', () => dropListener(client))
    try {
      await client.connect()
      client.on('notification', (message) => wake(message.channel))
      for (const channel of channels) await client.query(`LISTEN ${quoted(channel)}`)
      return client
    } catch (error) {
      void client.end().catch(() => undefined)
      if (isRefusedConnection(error) || !isConnectionError(error) || closing || Date.now() >= deadline) throw unavailable(error)
      await sleep(BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]!)
    }
  }
}

async function ensureListener(deadline: number): Promise<pg.Client> {
  if (listener) return listener
  listenerConnecting ??= connectListener(deadline).finally(() => {
    listenerConnecting = undefined
  })
  listener = await listenerConnecting
  return listener
}

/** The LISTEN connection broke: connect again in the background (forever, with backoff) and say "wake up" — a NOTIFY may have been missed meanwhile. */
function dropListener(client: pg.Client): void {
  if (listener !== client) return
  listener = undefined
  void client.end().catch(() => undefined)
  scheduleReconnect(0)
}

function scheduleReconnect(attempt: number): void {
  if (closing || channels.size === 0 || reconnectTimer) return
  reconnectTimer = setTimeout(() => {
    reconnectTimer = undefined
    if (closing || channels.size === 0 || listener) return
    ensureListener(Date.now() + options.connectTimeoutMs).then(
      () => {
        for (const channel of channels) wake(channel)
      },
      () => scheduleReconnect(attempt + 1),
    )
  }, BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]!)
}

async function listen(channel: string): Promise<void> {
  if (channels.has(channel)) return
  channels.add(channel)
  const client = await ensureListener(Date.now() + options.connectTimeoutMs).catch((error: unknown) => {
    channels.delete(channel)
    throw error
  })
  // A fresh connection LISTENed on every channel already; an existing one needs this one added.
  await client.query(`LISTEN ${quoted(channel)}`).catch((error: unknown) => {
    throw isConnectionError(error) ? unavailable(error) : refused(error)
  })
}

async function unlisten(channel: string): Promise<void> {
  if (!channels.delete(channel)) return
  const client = listener
  if (!client) return
  if (channels.size === 0) {
    listener = undefined
    await client.end().catch(() => undefined)
  } else {
    await client.query(`UNLISTEN ${quoted(channel)}`).catch(() => dropListener(client))
  }
}

async function close(): Promise<void> {
  closing = true
  if (reconnectTimer) clearTimeout(reconnectTimer)
  channels.clear()
  const client = listener
  listener = undefined
  if (client) await client.end().catch(() => undefined)
  if (pinned) {
    const open = pinned
    pinned = undefined
    await open.query('ROLLBACK').then(
      () => open.release(),
      (error: unknown) => open.release(error instanceof Error ? error : true),
    )
  }
  await pool.end()
}

async function handle(request: ThreadRequest): Promise<ThreadAnswer> {
  switch (request.op) {
    case 'connect': {
      await autocommit('SELECT 1', [])
      return {changes: 0, ok: true, rows: []}
    }
    case 'query': {
      if (lost) throw lostTransaction()
      const result = pinned ? await inTransaction(pinned, request.sql, request.params) : await autocommit(request.sql, request.params)
      return {changes: result.rowCount ?? 0, ok: true, rows: request.rows ? result.rows : []}
    }
    case 'begin':
      await begin()
      break
    case 'commit':
      await finish('COMMIT')
      break
    case 'rollback':
      await finish('ROLLBACK')
      break
    case 'listen':
      await listen(request.channel)
      break
    case 'unlisten':
      await unlisten(request.channel)
      break
    case 'close':
      await close()
      break
  }
  return {changes: 0, ok: true, rows: []}
}

function answer(reply: ThreadAnswer): void {
  port.postMessage(reply)
  Atomics.store(signal, 0, SIGNAL.ANSWERED)
  Atomics.notify(signal, 0)
}

let queue = Promise.resolve()
port.on('message', (request: ThreadRequest) => {
  queue = queue.then(async () => {
    try {
      answer(await handle(request))
    } catch (error) {
      answer({error: error instanceof ThreadFailure ? error.failure : {kind: 'sql', message: error instanceof Error ? error.message : String(error)}, ok: false})
    }
    if (request.op === 'close') port.close()
  })
})

// A bug in this thread must not leave the main thread waiting forever.
process.on('uncaughtException', (error) => {
  port.postMessage({error: {kind: 'unavailable', message: `the PostgreSQL driver thread failed: ${error.message}`}, ok: false} satisfies ThreadAnswer)
  Atomics.store(signal, 0, SIGNAL.DEAD)
  Atomics.notify(signal, 0)
  process.exit(1)
})
