import assert from 'node:assert/strict'

import {H2KError} from '@hyper2kvm/plugin-api'
import {parsePostgresUrl} from '../../src/store/postgres-url.js'
import {parseStoreSettings, type StoreKeys} from '../../src/store/store-config.js'

const SECRET = 'S3cret-Store-Pw'

/** Each URL: what it means (host, port, user, database) and the location messages show — never the password. */
const URLS: Array<{url: string; host: string; port: number; user: string; database: string; location: string; password?: string}> = [
  {database: 'jobs', host: 'db.example', location: 'postgres://h2k@db.example:5432/jobs', port: 5432, url: 'postgres://h2k@db.example/jobs', user: 'h2k'},
  {database: 'jobs', host: '10.0.0.5', location: 'postgresql://h2k@10.0.0.5:6432/jobs', password: SECRET, port: 6432, url: `postgresql://h2k:${SECRET}@10.0.0.5:6432/jobs`, user: 'h2k'},
  {database: 'jobs', host: '::1', location: 'postgres://h2k@[::1]:5432/jobs', port: 5432, url: 'postgres://h2k@[::1]/jobs', user: 'h2k'},
  {database: 'jobs', host: '/run/postgresql', location: 'postgres://h2k@/jobs?host=/run/postgresql&port=5433', port: 5433, url: 'postgres://h2k@/jobs?host=/run/postgresql&port=5433', user: 'h2k'},
  {database: 'my db', host: 'h', location: 'postgres://us%40er@h:5432/my%20db', password: 'p@ss', port: 5432, url: 'postgres://us%40er:p%40ss@h/my%20db', user: 'us@er'},
]

/** Each refused URL: the words the message must have; none may quote the URL (it may carry a password). */
const BAD_URLS: Array<{url: string; says: RegExp}> = [
  {says: /scheme must be postgres/, url: `mysql://u:${SECRET}@h/db`},
  {says: /names no user/, url: `postgres://h/db`},
  {says: /names no database/, url: `postgres://u:${SECRET}@h/`},
  {says: /port must be from 1 to 65535/, url: `postgres://u:${SECRET}@h/db?port=70000`},
  {says: /\?sslmode= is not supported/, url: `postgres://u:${SECRET}@h/db?sslmode=require`},
  {says: /absolute directory/, url: `postgres://u:${SECRET}@/db?host=relative`},
  {says: /not a valid URL/, url: `postgres://u:${SECRET}@h:port/db`},
]

const settings = (keys: {store?: StoreKeys; database?: StoreKeys}) => parseStoreSettings(keys, '/etc/hyper2kvm', ' (in daemon.yaml)', () => undefined)

describe('store: configuration (PostgreSQL URL and settings)', () => {
  for (const c of URLS) {
    it(`parses ${c.location}`, () => {
      const parsed = parsePostgresUrl(c.url)
      assert.deepEqual({database: parsed.database, host: parsed.host, location: parsed.location, password: parsed.password, port: parsed.port, user: parsed.user}, {database: c.database, host: c.host, location: c.location, password: c.password, port: c.port, user: c.user})
    })
  }
  for (const c of BAD_URLS) {
    it(`refuses ${c.says.source} naming the key, never quoting the URL`, () => {
      assert.throws(() => parsePostgresUrl(c.url, 'database.url'), (error: unknown) => error instanceof H2KError && error.code === 'H2K_USAGE' && error.message.startsWith('database.url: ') && c.says.test(error.message) && !error.message.includes(SECRET) && !JSON.stringify(error.details).includes(SECRET))
    })
  }

  it('defaults: pool 4, connect_timeout 30 s, statement_timeout 5 s, TLS off; the settings keep the URL without its password, the password apart (warned about)', async () => {
    const warnings: string[] = []
    const parsed = await parseStoreSettings({store: {url: `postgres://h2k:${SECRET}@db/jobs`}}, '/etc', '', (m) => warnings.push(m))
    assert.deepEqual(parsed, {connectTimeoutMs: 30_000, password: SECRET, poolSize: 4, ssl: {mode: 'disable'}, statementTimeoutMs: 5000, url: 'postgres://h2k@db:5432/jobs'})
    assert.equal(warnings.length, 1)
    assert.match(warnings[0]!, /SECRET_IN_CONFIG: store\.password/)
    assert.ok(!warnings[0]!.includes(SECRET))
  })

  it('database: with a url is the same store; database: {path} (HyperSDK) is not a store', async () => {
    assert.equal((await settings({database: {url: 'postgres://h2k@db/jobs'}}))?.url, 'postgres://h2k@db:5432/jobs')
    assert.equal(await settings({database: {path: '/var/lib/hypersdk/jobs.db'}}), undefined)
    assert.equal(await settings({}), undefined)
  })

  it('statement_timeout and connect_timeout in seconds; ssl.mode verify-ca', async () => {
    const parsed = await settings({store: {connect_timeout: 2.5, ssl: {ca_file: 'ca.pem', mode: 'verify-ca'}, statement_timeout: 0.5, url: 'postgres://h2k@db/jobs'}})
    assert.deepEqual([parsed?.connectTimeoutMs, parsed?.statementTimeoutMs, parsed?.ssl.mode], [2500, 500, 'verify-ca'])
  })

  it('TLS files are resolved against the configuration directory', async () => {
    const parsed = await settings({store: {ssl: {ca_file: 'ca.pem', cert_file: '/abs/c.pem', key_file: 'k.pem', mode: 'verify-full'}, url: 'postgres://h2k@db/jobs'}})
    assert.deepEqual(parsed?.ssl, {caFile: '/etc/hyper2kvm/ca.pem', certFile: '/abs/c.pem', keyFile: '/etc/hyper2kvm/k.pem', mode: 'verify-full'})
  })

  /** Each refused configuration: the key its message names; none quotes the password. */
  const BAD: Array<{keys: {store?: StoreKeys; database?: StoreKeys}; key: string}> = [
    {key: 'store.url', keys: {store: {password: SECRET}}},
    {key: 'store', keys: {database: {url: 'postgres://h2k@db/jobs'}, store: {url: 'postgres://h2k@db/jobs'}}},
    {key: 'store.pool_size', keys: {store: {pool_size: 0, url: 'postgres://h2k@db/jobs'}}},
    {key: 'store.connect_timeout', keys: {store: {connect_timeout: 0.01, url: 'postgres://h2k@db/jobs'}}},
    {key: 'store.statement_timeout', keys: {store: {statement_timeout: 0.05, url: 'postgres://h2k@db/jobs'}}},
    {key: 'store.statement_timeout', keys: {store: {statement_timeout: 601, url: 'postgres://h2k@db/jobs'}}},
    {key: 'store.statement_timeout', keys: {store: {statement_timeout: Number.NaN, url: 'postgres://h2k@db/jobs'}}},
    {key: 'store.ssl.mode', keys: {store: {ssl: {mode: 'verify-everything' as never}, url: 'postgres://h2k@db/jobs'}}},
    {key: 'store.ssl', keys: {store: {ssl: {ca_file: 'ca.pem'}, url: 'postgres://h2k@db/jobs'}}},
    {key: 'store.ssl', keys: {store: {ssl: {cert_file: 'c.pem', mode: 'require'}, url: 'postgres://h2k@db/jobs'}}},
    {key: 'store.url', keys: {store: {password: SECRET, url: `postgres://h2k:${SECRET}@db/jobs`}}},
    {key: 'database.path', keys: {database: {path: '/x.db', url: 'postgres://h2k@db/jobs'}}},
  ]
  for (const c of BAD) {
    it(`refuses a wrong ${c.key} with H2K_USAGE naming it`, async () => {
      await assert.rejects(settings(c.keys), (error: unknown) => error instanceof H2KError && error.code === 'H2K_USAGE' && error.message.startsWith(c.key) && error.message.includes('(in daemon.yaml)') && !error.message.includes(SECRET))
    })
  }
})
