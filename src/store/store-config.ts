import {resolve} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {resolveSecret} from '../secrets/resolve-secret.js'
import {TLS_MODES} from './postgres-tls.js'
import {parsePostgresUrl} from './postgres-url.js'
import type {PostgresSettings, PostgresTlsSettings} from './store-target.js'

/** pool_size, connect_timeout and statement_timeout when not set. */
export const POSTGRES_DEFAULTS = {connectTimeoutMs: 30_000, poolSize: 4, statementTimeoutMs: 5000} as const

/** `store:` (or its alias `database:`) as written in the daemon configuration (schemas/daemon.schema.json checked its shape). */
export interface StoreKeys {
  url?: string
  password?: string
  password_file?: string
  ssl?: {mode?: PostgresTlsSettings['mode']; ca_file?: string; cert_file?: string; key_file?: string}
  pool_size?: number
  /** Seconds: how long the open waits for the server. */
  connect_timeout?: number
  /** Seconds: the bound of one store call of a running daemon (B). */
  statement_timeout?: number
  /** HyperSDK's `database: {path}` (a SQLite file of its own): accepted, not used. */
  path?: string
}

/**
 * The PostgreSQL store of the daemon configuration: `store:`, or `database:` (its alias) when that has a
 * `url`; undefined when neither names one (the SQLite store in the state directory). Relative files are
 * relative to `baseDir`; the password comes through the secret store (`store.password`: keychain,
 * credential, password_file, HYPER2KVM_STORE_PASSWORD, then the plain value or the URL's own, with a
 * warning). Errors name the key and never quote the URL or the password.
 */
export async function parseStoreSettings(
  keys: {store?: StoreKeys; database?: StoreKeys},
  baseDir: string,
  where: string,
  warn: (message: string) => void,
): Promise<PostgresSettings | undefined> {
  if (keys.store !== undefined && keys.database?.url !== undefined) {
    throw new H2KError('H2K_USAGE', `store and database${where} both name the job store; database: is an alias of store:, keep one.`, {details: {key: 'database'}})
  }
  const section = keys.store !== undefined ? 'store' : 'database'
  const store = keys.store ?? (keys.database?.url === undefined ? undefined : keys.database)
  if (store === undefined) return undefined
  const key = (name: string): string => `${section}.${name}`
  if (store.url === undefined) {
    throw new H2KError('H2K_USAGE', `${key('url')}${where} is missing: the store: section needs the PostgreSQL URL (leave store: out for the embedded SQLite store).`, {
      details: {key: key('url')},
      suggestions: ['Write it as url: postgres://USER@HOST:5432/DATABASE.'],
    })
  }
  const address = parsePostgresUrl(store.url, key('url'))
  if (store.path !== undefined) throw new H2KError('H2K_USAGE', `${key('path')}${where} is HyperSDK's SQLite file; with a url it means nothing: remove it.`, {details: {key: key('path')}})
  const poolSize = store.pool_size ?? POSTGRES_DEFAULTS.poolSize
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 100) throw new H2KError('H2K_USAGE', `${key('pool_size')}${where} must be an integer from 1 to 100.`, {details: {key: key('pool_size')}})
  const connectTimeoutMs = store.connect_timeout === undefined ? POSTGRES_DEFAULTS.connectTimeoutMs : Math.round(store.connect_timeout * 1000)
  if (!Number.isFinite(connectTimeoutMs) || connectTimeoutMs < 100 || connectTimeoutMs > 3_600_000) {
    throw new H2KError('H2K_USAGE', `${key('connect_timeout')}${where} must be a number of seconds from 0.1 to 3600.`, {details: {key: key('connect_timeout')}})
  }
  const statementTimeoutMs = store.statement_timeout === undefined ? POSTGRES_DEFAULTS.statementTimeoutMs : Math.round(store.statement_timeout * 1000)
  if (!Number.isFinite(statementTimeoutMs) || statementTimeoutMs < 100 || statementTimeoutMs > 600_000) {
    throw new H2KError('H2K_USAGE', `${key('statement_timeout')}${where} must be a number of seconds from 0.1 to 600.`, {details: {key: key('statement_timeout')}})
  }
  const file = (value: string | undefined): string | undefined => (value === undefined ? undefined : resolve(baseDir, value))
  const ssl: PostgresTlsSettings = {mode: store.ssl?.mode ?? 'disable'}
  if (!(TLS_MODES as readonly string[]).includes(ssl.mode)) throw new H2KError('H2K_USAGE', `${key('ssl.mode')}${where} must be disable, require, verify-ca or verify-full.`, {details: {key: key('ssl.mode')}})
  if (store.ssl?.ca_file !== undefined) ssl.caFile = file(store.ssl.ca_file)
  if (store.ssl?.cert_file !== undefined) ssl.certFile = file(store.ssl.cert_file)
  if (store.ssl?.key_file !== undefined) ssl.keyFile = file(store.ssl.key_file)
  if ((ssl.caFile ?? ssl.certFile ?? ssl.keyFile) !== undefined && ssl.mode === 'disable') {
    throw new H2KError('H2K_USAGE', `${key('ssl')}${where} names certificate files with mode disable: set mode: require, verify-ca or verify-full.`, {details: {key: key('ssl.mode')}})
  }
  if ((ssl.certFile === undefined) !== (ssl.keyFile === undefined)) {
    throw new H2KError('H2K_USAGE', `${key('ssl')}${where}: a client certificate needs both cert_file and key_file.`, {details: {key: key('ssl')}})
  }
  if (address.password !== undefined && store.password !== undefined) {
    throw new H2KError('H2K_USAGE', `${key('url')}${where} carries a password and ${key('password')} is set too; keep one (better: password_file or the secret store).`, {details: {key: key('password')}})
  }
  // The URL's own password counts as a plain value in the configuration (warned about, redacted from then on).
  const secret = await resolveSecret({baseDir, file: file(store.password_file), name: 'store.password', value: store.password ?? address.password}, warn)
  return {
    connectTimeoutMs,
    poolSize,
    ssl,
    statementTimeoutMs,
    // Without the password (it is in `password`): the settings may be shown.
    url: address.location,
    ...(secret === undefined ? {} : {password: secret.value}),
  }
}
