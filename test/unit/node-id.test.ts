import assert from 'node:assert/strict'
import {mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {generateNodeId, nodeIdPath, resolveNodeId} from '../../src/cluster/node-id.js'
import {NODE_ID_PATTERN} from '../../src/daemon/config.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('node id (state_dir/node_id)', () => {
  let temp: ReturnType<typeof makeTempDir>
  beforeEach(() => (temp = makeTempDir('h2k-node-id-')))
  afterEach(() => temp.cleanup())

  it('is generated once as <hostname>-<6 hex>, kept 0600 and read back on the next start', async () => {
    const id = await resolveNodeId(temp.dir, undefined)
    assert.match(id, /-[0-9a-f]{6}$/)
    assert.ok(NODE_ID_PATTERN.test(id))
    assert.equal(readFileSync(nodeIdPath(temp.dir), 'utf8'), `${id}\n`)
    assert.equal(statSync(nodeIdPath(temp.dir)).mode & 0o777, 0o600)
    assert.equal(await resolveNodeId(temp.dir, undefined), id, 'kept across restarts')
  })

  it('node_id of the configuration wins and writes nothing', async () => {
    assert.equal(await resolveNodeId(temp.dir, 'conv-01'), 'conv-01')
    assert.throws(() => statSync(nodeIdPath(temp.dir)), /ENOENT/)
  })

  it('a host name of any shape gives a valid id', () => {
    for (const host of ['conv01.example.org', '-weird host_name!', '', 'x'.repeat(200), 'ünïcode']) assert.ok(NODE_ID_PATTERN.test(generateNodeId(host)), host)
  })

  it('a kept file that is not a node id, not a regular file, or a symlink is refused without quoting it', async () => {
    const hostile = '../../etc/passwd\u001b[31m'
    writeFileSync(nodeIdPath(temp.dir), hostile)
    await assert.rejects(resolveNodeId(temp.dir, undefined), (error: H2KError) => {
      assert.equal(error.code, 'H2K_USAGE')
      assert.ok(!error.message.includes('passwd') && !error.message.includes('\u001b'), error.message)
      return true
    })
    const linked = join(temp.dir, 'linked')
    mkdirSync(linked)
    writeFileSync(join(temp.dir, 'target'), 'conv-02\n')
    symlinkSync(join(temp.dir, 'target'), nodeIdPath(linked))
    await assert.rejects(resolveNodeId(linked, undefined), (error: H2KError) => error.code === 'H2K_USAGE' && /not a regular file/.test(error.message))
    const directory = join(temp.dir, 'dir')
    mkdirSync(nodeIdPath(directory), {recursive: true})
    await assert.rejects(resolveNodeId(directory, undefined), (error: H2KError) => error.code === 'H2K_USAGE' && /not a regular file/.test(error.message))
  })
})
