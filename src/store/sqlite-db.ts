import {EventEmitter} from 'node:events'

import Database from 'better-sqlite3'

import type {RunResult, SqlDb, SqlValue} from './sql-db.js'

/** The embedded engine: one better-sqlite3 connection (WAL, busy_timeout, foreign keys on), statements cached. */
export class SqliteDb implements SqlDb {
  readonly engine = 'sqlite' as const
  private readonly statements = new Map<string, Database.Statement>()
  /** In-process wake-ups only: one SQLite store has one daemon. */
  private readonly wakeups = new EventEmitter()

  private constructor(
    readonly location: string,
    /** The better-sqlite3 handle, for what only SQLite has (pragmas, the online backup API, VACUUM). */
    readonly raw: Database.Database,
  ) {}

  /** Open (creating unless read-only) the database file at `path`; the caller maps foreign errors. */
  static open(path: string, options: {readonly?: boolean} = {}): SqliteDb {
    const readonly = options.readonly === true
    const raw = new Database(path, {fileMustExist: readonly, readonly})
    raw.pragma('busy_timeout = 5000')
    if (!readonly) {
      raw.pragma('journal_mode = WAL')
      raw.pragma('synchronous = NORMAL')
    }
    return new SqliteDb(path, raw)
  }

  get open(): boolean {
    return this.raw.open
  }

  private statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql)
    if (!statement) {
      statement = this.raw.prepare(sql)
      this.statements.set(sql, statement)
    }
    return statement
  }

  run(sql: string, params: readonly SqlValue[] = []): RunResult {
    return {changes: this.statement(sql).run(...params).changes}
  }

  get<T>(sql: string, params: readonly SqlValue[] = []): T | undefined {
    return this.statement(sql).get(...params) as T | undefined
  }

  all<T>(sql: string, params: readonly SqlValue[] = []): T[] {
    return this.statement(sql).all(...params) as T[]
  }

  exec(sql: string): void {
    this.raw.exec(sql)
  }

  transaction<T>(fn: () => T): T {
    return this.raw.transaction(fn)()
  }

  listen(channel: string, listener: () => void): () => void {
    this.wakeups.on(channel, listener)
    return () => this.wakeups.off(channel, listener)
  }

  notify(channel: string): void {
    // Asynchronously, like a notification from the database: a listener never runs inside the notifier's transaction.
    setImmediate(() => this.wakeups.emit(channel))
  }

  close(): void {
    this.wakeups.removeAllListeners()
    this.statements.clear()
    this.raw.close()
  }
}
