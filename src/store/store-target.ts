import {PostgresDb} from './postgres-db.js'
import type {SqlDb} from './sql-db.js'
import {SqliteDb} from './sqlite-db.js'

/** TLS to the PostgreSQL server (`store.ssl`). */
export interface PostgresTlsSettings {
  /**
   * disable: plain TCP; require: encrypted, the server NOT authenticated (libpq's require; with ca_file the
   * chain is checked, as libpq does); verify-ca: encrypted, the chain checked against ca_file (or the system
   * CAs), not the host name; verify-full: the chain and the host name checked.
   */
  mode: 'disable' | 'require' | 'verify-ca' | 'verify-full'
  caFile?: string
  certFile?: string
  keyFile?: string
}

/** A PostgreSQL job store (`store:` / `database:` in the daemon configuration), secrets resolved. */
export interface PostgresSettings {
  /** postgres://user@host:port/db or postgres://user@/db?host=/socket/dir — a password written in it is used when `password` is not set. */
  url: string
  /** From the secret store (`store.password`: keychain, credential, password_file, env, config); never logged. */
  password?: string
  ssl: PostgresTlsSettings
  /** Connections of the pool (default 4). */
  poolSize: number
  /** How long the open waits for an unreachable or starting server, ms (default 30 s). */
  connectTimeoutMs: number
  /**
   * B, the bound of one store call of a running daemon (a pool connection + the statement, with any retries
   * while the server restarts), ms; also the server's statement_timeout and lock_timeout. Default 5 s.
   */
  statementTimeoutMs?: number
}

/**
 * Where the job store is: SQLite at `sqlitePath` (the embedded default: `<state_dir>/jobs.db`), unless
 * `postgres` is set (several daemons sharing one queue); `sqlitePath` is then not used for the store.
 */
export interface StoreTarget {
  sqlitePath: string
  postgres?: PostgresSettings
}

/** The target of a daemon: its SQLite file, unless the configuration names a PostgreSQL store. */
export function storeTarget(sqlitePath: string, postgres: PostgresSettings | undefined): StoreTarget {
  return postgres === undefined ? {sqlitePath} : {postgres, sqlitePath}
}

/** Open the store's connection (the caller maps foreign errors); PostgreSQL errors are already H2KErrors or `PostgresError`s. */
export function openSqlDb(target: StoreTarget, options: {readonly?: boolean} = {}): SqlDb {
  return target.postgres === undefined ? SqliteDb.open(target.sqlitePath, options) : PostgresDb.open(target.postgres)
}

/** Where a target's data lives, for messages (the URL without its password, or the file). */
export function targetLocation(target: StoreTarget): string {
  return target.postgres === undefined ? target.sqlitePath : PostgresDb.locationOf(target.postgres)
}
