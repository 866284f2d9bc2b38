/**
 * One connection to the job store's database, whichever engine holds it: SQLite (better-sqlite3, the
 * embedded default) or PostgreSQL (several daemons on several hosts). Synchronous on purpose: the store
 * classes above it were written against better-sqlite3's synchronous calls, and a transaction with reads
 * between its writes stays one plain function. SQL is written once with `?` placeholders in the subset both
 * engines speak (`INSERT … ON CONFLICT DO NOTHING`, `RETURNING`, `IS DISTINCT FROM`); where they differ
 * the store class asks `engine`.
 */

/** A value bound to a `?` placeholder (booleans are stored as 0/1 integers in both engines). */
export type SqlValue = string | number | bigint | null | Buffer

export type SqlEngine = 'sqlite' | 'postgres'

export interface RunResult {
  /** Rows inserted, updated or deleted. */
  changes: number
}

export interface SqlDb {
  readonly engine: SqlEngine
  /** Where the data lives, for messages and logs: a file path, or the URL without its password. */
  readonly location: string
  /** Whether the connection is open (a store closed while a late log line arrives). */
  readonly open: boolean
  /** One statement that returns no rows (or whose rows are not wanted). */
  run(sql: string, params?: readonly SqlValue[]): RunResult
  /** The first row of a query, or undefined. */
  get<T>(sql: string, params?: readonly SqlValue[]): T | undefined
  /** Every row of a query. */
  all<T>(sql: string, params?: readonly SqlValue[]): T[]
  /** Several statements without parameters (schema changes). */
  exec(sql: string): void
  /**
   * Run `fn` in one transaction: committed when it returns, rolled back when it throws. Nested calls become
   * savepoints. `fn` must be synchronous (every statement inside goes through this same connection).
   */
  transaction<T>(fn: () => T): T
  /**
   * Wake-ups between processes sharing the store: `listener` runs (asynchronously, on the event loop) after
   * any connection — this process's or another's — calls `notify(channel)`. PostgreSQL: LISTEN/NOTIFY.
   * SQLite has no such thing across processes; there only this process's own notifications arrive.
   * Returns the function that stops listening.
   */
  listen(channel: string, listener: () => void): () => void
  /** Wake every listener of `channel` (inside a transaction: delivered when it commits). */
  notify(channel: string): void
  close(): void
}
