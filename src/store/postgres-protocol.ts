/**
 * What PostgresDb (the main thread, synchronous) and its driver thread (postgres-thread.ts, the `pg` pool)
 * say to each other. One request at a time: the main thread posts it on the request port, blocks with
 * Atomics.wait on `signal[0]`, and takes the answer with receiveMessageOnPort once the thread has set it.
 * Wake-ups of LISTEN arrive separately, on the worker's parentPort, through the event loop.
 */
import type {SqlValue} from './sql-db.js'

/** `signal[0]`: the thread's answer is waiting (ANSWERED) or the thread died (DEAD); the main thread resets it to IDLE. */
export const SIGNAL = {ANSWERED: 1, DEAD: 2, IDLE: 0} as const

/** TLS for `pg`, the files already read (the thread turns it into node:tls options: postgres-tls.ts). */
export interface ThreadTls {
  /** The certificate chain is checked (against `ca`, else the system CAs). */
  verifyChain: boolean
  /** The certificate's name is checked against the host too (verify-full). */
  verifyHost: boolean
  ca?: string
  cert?: string
  key?: string
}

export interface ThreadConnection {
  host: string
  port: number
  user: string
  database: string
  password?: string
  ssl: false | ThreadTls
}

export interface ThreadOptions {
  connection: ThreadConnection
  poolSize: number
  /** The bound of the open (the first `connect` request): how long it waits for a server that is starting. */
  connectTimeoutMs: number
  /** B, the bound of every later request (a pool connection + the statement, with any retries), ms. */
  statementTimeoutMs: number
  applicationName: string
  /** Channels to LISTEN on from the start (a driver thread replacing one that died): woken once listening. */
  channels: string[]
}

export type ThreadRequest =
  | {op: 'connect'}
  | {op: 'query'; sql: string; params: readonly SqlValue[]; rows: boolean}
  | {op: 'begin'}
  | {op: 'commit'}
  | {op: 'rollback'}
  | {op: 'listen'; channel: string}
  | {op: 'unlisten'; channel: string}
  | {op: 'close'}

/** unavailable: the server could not be reached (or was lost); sql: the server refused the statement. */
export type ThreadErrorKind = 'unavailable' | 'sql'

export interface ThreadError {
  kind: ThreadErrorKind
  message: string
  /** SQLSTATE (sql) or the Node error code (unavailable, e.g. ECONNREFUSED). */
  code?: string
  /** unavailable inside a transaction, or a write whose outcome is unknown: nothing was replayed. */
  unknownOutcome?: boolean
}

export type ThreadAnswer = {ok: true; rows: unknown[]; changes: number} | {ok: false; error: ThreadError}

/** Posted on parentPort: a NOTIFY arrived on `channel` (or the LISTEN connection came back, and one may have been missed). */
export interface ThreadWakeup {
  wake: string
}
