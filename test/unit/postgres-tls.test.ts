import {strict as assert} from 'node:assert'
import {chmodSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {readTls, tlsConnectionOptions} from '../../src/store/postgres-tls.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('store TLS: what each ssl.mode checks', () => {
  let temp: ReturnType<typeof makeTempDir>
  let ca: string
  before(() => {
    temp = makeTempDir('h2k-tls-')
    ca = join(temp.dir, 'ca.pem')
    writeFileSync(ca, 'CA PEM\n')
  })
  after(() => temp.cleanup())

  it('disable: no TLS', () => assert.equal(tlsConnectionOptions(readTls({mode: 'disable'})), false))

  /** mode (and a CA or not) → whether the chain and the host name are checked. */
  const CASES: Array<{mode: 'require' | 'verify-ca' | 'verify-full'; withCa: boolean; chain: boolean; host: boolean}> = [
    {chain: false, host: false, mode: 'require', withCa: false},
    {chain: true, host: false, mode: 'require', withCa: true},
    {chain: true, host: false, mode: 'verify-ca', withCa: true},
    {chain: true, host: false, mode: 'verify-ca', withCa: false},
    {chain: true, host: true, mode: 'verify-full', withCa: true},
  ]
  for (const c of CASES) {
    it(`${c.mode}${c.withCa ? ' with ca_file' : ''}: chain ${c.chain ? 'checked' : 'not checked'}, host name ${c.host ? 'checked' : 'not checked'}`, () => {
      const options = tlsConnectionOptions(readTls({mode: c.mode, ...(c.withCa ? {caFile: ca} : {})}))
      assert.ok(options !== false)
      assert.equal(options.rejectUnauthorized, c.chain)
      assert.equal(options.ca, c.withCa ? 'CA PEM\n' : undefined)
      // Without our checkServerIdentity, node:tls checks the name (verify-full); with it, the name is accepted whatever it is.
      assert.equal(options.checkServerIdentity === undefined, c.host || !c.chain)
      if (options.checkServerIdentity) assert.equal(options.checkServerIdentity('elsewhere.example', {} as never), undefined)
    })
  }

  for (const mode of [0o640, 0o604, 0o660]) {
    it(`refuses a key_file with mode ${mode.toString(8)} (H2K_USAGE naming store.ssl.key_file); 600 is read`, () => {
      const key = join(temp.dir, `key-${mode.toString(8)}.pem`)
      writeFileSync(key, 'KEY PEM\n')
      chmodSync(key, mode)
      assert.throws(() => readTls({certFile: ca, keyFile: key, mode: 'verify-full'}), (error: unknown) => error instanceof H2KError && error.code === 'H2K_USAGE' && error.message.startsWith('store.ssl.key_file:') && !error.message.includes('KEY PEM'))
      chmodSync(key, 0o600)
      const read = readTls({certFile: ca, keyFile: key, mode: 'verify-full'})
      assert.ok(read !== false && read.key === 'KEY PEM\n')
    })
  }

  it('a missing file is H2K_USAGE naming its key', () => {
    assert.throws(() => readTls({caFile: join(temp.dir, 'nope.pem'), mode: 'verify-ca'}), (error: unknown) => error instanceof H2KError && error.code === 'H2K_USAGE' && error.message.startsWith('store.ssl.ca_file:'))
  })
})
