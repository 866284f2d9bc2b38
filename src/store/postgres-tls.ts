/**
 * TLS to the PostgreSQL server, as libpq's sslmode means it:
 *   disable     plain TCP (or a Unix socket);
 *   require     encrypted; the server is NOT authenticated (anyone in the middle can answer) — unless a
 *               ca_file is given, then the chain is checked against it (libpq does the same);
 *   verify-ca   encrypted, the chain checked against ca_file (else the system CAs), the host name not;
 *   verify-full encrypted, the chain and the host name checked.
 * The files are read on the main thread when the store opens (errors name their key); the driver thread
 * turns the result into node:tls options.
 */
import {readFileSync, statSync} from 'node:fs'
import type {ConnectionOptions} from 'node:tls'

import {H2KError} from '@hyper2kvm/plugin-api'
import type {ThreadTls} from './postgres-protocol.js'
import type {PostgresTlsSettings} from './store-target.js'

export const TLS_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const

/** The TLS of a store's settings, its files read now: a missing one, or a private key others can read, is H2K_USAGE naming its key. */
export function readTls(ssl: PostgresTlsSettings): false | ThreadTls {
  if (ssl.mode === 'disable') return false
  const read = (key: string, path: string | undefined): string | undefined => {
    if (path === undefined) return undefined
    try {
      return readFileSync(path, 'utf8')
    } catch (error) {
      throw new H2KError('H2K_USAGE', `store.ssl.${key}: ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`, {cause: error, details: {key: `store.ssl.${key}`, path}})
    }
  }
  if (ssl.keyFile !== undefined) refuseSharedKey(ssl.keyFile)
  const ca = read('ca_file', ssl.caFile)
  const cert = read('cert_file', ssl.certFile)
  const key = read('key_file', ssl.keyFile)
  return {
    verifyChain: ssl.mode !== 'require' || ca !== undefined,
    verifyHost: ssl.mode === 'verify-full',
    ...(ca === undefined ? {} : {ca}),
    ...(cert === undefined ? {} : {cert}),
    ...(key === undefined ? {} : {key}),
  }
}

/** A client key that group or others may read (or write) is refused, as libpq refuses it. */
function refuseSharedKey(path: string): void {
  let mode: number
  try {
    mode = statSync(path).mode
  } catch {
    return // reported by the read, with its reason
  }
  if ((mode & 0o077) !== 0) {
    throw new H2KError('H2K_USAGE', `store.ssl.key_file: ${path} is accessible by group or others (mode ${(mode & 0o777).toString(8)}); a private key must be 0600 or stricter.`, {
      details: {key: 'store.ssl.key_file', path},
      suggestions: [`chmod 600 ${path}`],
    })
  }
}

/** node:tls options for `pg` (on the driver thread: functions cannot cross to it). */
export function tlsConnectionOptions(tls: false | ThreadTls): false | ConnectionOptions {
  if (tls === false) return false
  return {
    rejectUnauthorized: tls.verifyChain,
    // verify-ca (and require with a CA): the chain, not the name.
    ...(tls.verifyChain && !tls.verifyHost ? {checkServerIdentity: () => undefined} : {}),
    ...(tls.ca === undefined ? {} : {ca: tls.ca}),
    ...(tls.cert === undefined ? {} : {cert: tls.cert}),
    ...(tls.key === undefined ? {} : {key: tls.key}),
  }
}
