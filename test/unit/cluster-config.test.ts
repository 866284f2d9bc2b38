import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {loadDaemonConfig} from '../../src/daemon/config.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('daemon configuration: lease timing with a PostgreSQL store', () => {
  let temp: ReturnType<typeof makeTempDir>
  beforeEach(() => (temp = makeTempDir('h2k-cluster-config-')))
  afterEach(() => temp.cleanup())

  const load = (lines: string[]) => {
    const config = join(temp.dir, 'daemon.yaml')
    writeFileSync(config, `${[`watch_dir: ${join(temp.dir, 'in')}`, `output_dir: ${join(temp.dir, 'out')}`, ...lines].join('\n')}\n`)
    return loadDaemonConfig({config})
  }
  const store = ['store:', '  url: postgres://h2k@127.0.0.1:5432/h2k', '  password: not-used-here']

  it('lease_ttl must cover 3 heartbeats and the store\'s statement bound (5 s): H2K_USAGE naming the keys', async () => {
    await assert.rejects(load(['heartbeat_interval: 3', 'lease_ttl: 13', ...store]), (error: H2KError) => {
      assert.equal(error.code, 'H2K_USAGE')
      assert.match(error.message, /lease_ttl \(13 s\) must be at least 3 × heartbeat_interval \(3 s\) \+ store\.statement_timeout \(5 s\)/)
      assert.ok(!error.message.includes('not-used-here'))
      return true
    })
    const ok = await load(['heartbeat_interval: 3', 'lease_ttl: 14', ...store])
    assert.equal(ok.leaseTtl, 14)
  })

  it('the embedded SQLite store needs only 3 heartbeats (one node, no network)', async () => {
    const config = await load(['heartbeat_interval: 3', 'lease_ttl: 9', `state_dir: ${join(temp.dir, 'state')}`])
    assert.equal(config.leaseTtl, 9)
    assert.equal(config.stateDir, join(temp.dir, 'state'))
  })
})
