import {H2KError} from '@hyper2kvm/plugin-api'

/** Where a PostgreSQL store is, from its URL: `postgres://user[:password]@host[:port]/database[?host=/socket/dir]`. */
export interface PostgresAddress {
  /** A host name, an IP address, or (starting with /) the directory of the server's Unix socket. */
  host: string
  port: number
  user: string
  database: string
  /** The password written in the URL, if any (a secret: the configuration warns about it, messages never show it). */
  password?: string
  /** The URL without its password: for messages, logs and `ctl status`. */
  location: string
}

const SCHEMES = new Set(['postgres:', 'postgresql:'])

/**
 * Parse a store URL. Errors name `key` (the configuration key it came from) and never quote the URL (it may
 * carry a password). A Unix socket is `?host=/run/postgresql` (the host part may then be empty).
 */
export function parsePostgresUrl(url: string, key = 'store.url'): PostgresAddress {
  const invalid = (why: string): H2KError =>
    new H2KError('H2K_USAGE', `${key}: ${why}.`, {
      details: {key},
      suggestions: [`Write it as postgres://USER@HOST:PORT/DATABASE (or postgres://USER@/DATABASE?host=/run/postgresql for a Unix socket); give the password with ${key.replace(/url$/, 'password_file')} or the secret store (store.password).`],
    })
  let parsed: URL
  try {
    // A URL with credentials and no host ("user@/db?host=/dir") is not a WHATWG URL: give it a placeholder host.
    parsed = new URL(url.replace(/^(\w+:\/\/[^/?#]*@)(?=[/?#])/, '$1localhost'))
  } catch {
    throw invalid('not a valid URL')
  }
  if (!SCHEMES.has(parsed.protocol)) throw invalid(`the scheme must be postgres:// or postgresql:// (got ${parsed.protocol.replace(/:$/, '')})`)
  const decode = (value: string, what: string): string => {
    try {
      return decodeURIComponent(value)
    } catch {
      throw invalid(`its ${what} is not valid percent-encoding`)
    }
  }
  const user = decode(parsed.username, 'user name')
  if (user === '') throw invalid('it names no user (postgres://USER@…)')
  const database = decode(parsed.pathname.replace(/^\//, ''), 'database name')
  if (database === '' || database.includes('/')) throw invalid('it names no database (…/DATABASE at the end)')
  for (const name of parsed.searchParams.keys()) {
    if (name !== 'host' && name !== 'port') throw invalid(`the parameter ?${name}= is not supported (ssl: and the other store keys are separate keys)`)
  }
  const socketDir = parsed.searchParams.get('host') ?? undefined
  if (socketDir !== undefined && !socketDir.startsWith('/')) throw invalid('?host= must be the absolute directory of the server\'s Unix socket')
  const portText = parsed.searchParams.get('port') ?? parsed.port
  const port = portText === '' ? 5432 : Number(portText)
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw invalid('its port must be from 1 to 65535')
  const host = socketDir ?? parsed.hostname.replace(/^\[(.*)\]$/, '$1')
  if (host === '') throw invalid('it names no host')
  const password = parsed.password === '' ? undefined : decode(parsed.password, 'password')
  const location = socketDir === undefined
    ? `${parsed.protocol}//${encodeURIComponent(user)}@${parsed.hostname}:${port}/${encodeURIComponent(database)}`
    : `${parsed.protocol}//${encodeURIComponent(user)}@/${encodeURIComponent(database)}?host=${socketDir}&port=${port}`
  return {database, host, location, port, user, ...(password === undefined ? {} : {password})}
}
