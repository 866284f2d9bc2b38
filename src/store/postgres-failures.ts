/**
 * How the PostgreSQL driver thread tells failures apart: a server that cannot be reached (or a connection
 * that broke or timed out) from SQL the server refused, and the error it answers the main thread with.
 */
import type {ThreadError} from './postgres-protocol.js'

/** Node error codes of a server that cannot be reached (yet). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED'])
/** SQLSTATEs of a server shutting down or starting up: the statement was not run (or rolled back); safe to run again. */
export const SERVER_GOING = new Set(['57P01', '57P02', '57P03'])
/** pg's own messages for a connection that broke, could not be made, or did not answer in time. */
const BROKEN = /connection terminated|connection timeout|timeout exceeded when trying to connect|client has encountered a connection error|not queryable|connection ended|query read timeout/i
/**
 * The server cancelled the statement after statement_timeout (57014) or lock_timeout (55P03): it is alive but
 * did not get the work done within the bound. Reported as unavailable (rolled back, nothing written).
 */
const TOO_SLOW = new Set(['57014', '55P03'])

/** Waits between two attempts: short first (a restart takes about a second), then at most 1 s. */
const BACKOFF_MS = [50, 100, 200, 400, 800, 1000]

export const backoffMs = (attempt: number): number => BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]!

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))

export const codeOf = (error: unknown): string | undefined => {
  const code = (error as {code?: unknown} | undefined)?.code
  return typeof code === 'string' ? code : undefined
}

export function isConnectionError(error: unknown): boolean {
  const code = codeOf(error)
  if (code !== undefined && (UNREACHABLE.has(code) || SERVER_GOING.has(code) || code.startsWith('08') || code === '53300')) return true
  return error instanceof Error && BROKEN.test(error.message)
}

/** Authentication and a missing database: the store cannot be used, and waiting will not change that. */
export function isRefusedConnection(error: unknown): boolean {
  const code = codeOf(error)
  return code !== undefined && (code.startsWith('28') || code === '3D000')
}

export const isTooSlow = (error: unknown): boolean => TOO_SLOW.has(codeOf(error) ?? '')

/** An error the thread answers with (thrown through its own code, then posted to the main thread). */
export class ThreadFailure extends Error {
  constructor(
    readonly failure: ThreadError,
    /** The server (or the road to it) failed: following calls fail fast until a probe gets through (postgres-breaker.ts). */
    readonly opensBreaker = false,
  ) {
    super(failure.message)
  }
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** The server could not be reached or the connection broke (opening the breaker unless `opens` is false). */
export function unavailable(error: unknown, options: {unknownOutcome?: boolean; opens?: boolean} = {}): ThreadFailure {
  return new ThreadFailure({code: codeOf(error), kind: 'unavailable', message: messageOf(error), ...(options.unknownOutcome ? {unknownOutcome: true} : {})}, options.opens ?? true)
}

/** The server refused the statement (a constraint, a syntax error): the caller's business, nothing broken. */
export function refused(error: unknown): ThreadFailure {
  return new ThreadFailure({code: codeOf(error), kind: 'sql', message: messageOf(error)})
}

/** The call's bound (statement_timeout, or connect_timeout for the open) passed before it could finish. */
export function deadlinePassed(boundMs: number, cause?: unknown): ThreadFailure {
  const why = cause === undefined ? '' : ` (last: ${messageOf(cause)})`
  return new ThreadFailure({code: 'ETIMEDOUT', kind: 'unavailable', message: `no answer within ${boundMs / 1000} s${why}`}, true)
}

/** A failure of `error` as the thread answers it: unavailable (breaking the call's connection) or refused SQL. */
export function classify(error: unknown, unknownOutcome = false): ThreadFailure {
  if (error instanceof ThreadFailure) return error
  if (isTooSlow(error)) return unavailable(error, {opens: false})
  if (isRefusedConnection(error)) return unavailable(error, {opens: false})
  return isConnectionError(error) ? unavailable(error, {unknownOutcome}) : refused(error)
}
