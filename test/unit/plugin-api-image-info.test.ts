import assert from 'node:assert/strict'
import {chmodSync, existsSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import type {H2KError, PluginApi} from '@hyper2kvm/plugin-api'
import {makeTempDir} from '../helpers/temp-dir.js'

/**
 * The host's `api.imageInfo` (what every register hook receives) always runs qemu-img in the sandbox: a
 * plugin cannot opt out with `sandbox: false` (that is the job's decision, which `ctx.imageInfo` follows).
 * Observed with a stand-in qemu-img first on PATH, outside /usr: unsandboxed it runs and leaves a mark; the
 * sandbox refuses to start a program it cannot show (H2K_SANDBOX_UNAVAILABLE) and it never runs.
 */
describe('api.imageInfo: the sandbox is the host\'s decision', () => {
  let dir: string
  let cleanup: () => void
  const savedPath = process.env.PATH
  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-api-info-'))
    writeFileSync(join(dir, 'qemu-img'), `#!/bin/sh\ntouch '${join(dir, 'ran-unsandboxed')}'\necho '{}'\n`)
    chmodSync(join(dir, 'qemu-img'), 0o755)
    writeFileSync(join(dir, 'disk.raw'), Buffer.alloc(4096))
    process.env.PATH = `${dir}:${savedPath}`
  })
  after(() => {
    process.env.PATH = savedPath
    cleanup()
  })

  it('sandbox: false from a plugin is ignored: qemu-img is started in the sandbox or not at all', async () => {
    const api = (await import('../../src/plugin-api.js')) as PluginApi
    const spec = api.formatNode('raw', join(dir, 'disk.raw'))
    const options = {sandbox: false} as unknown as Parameters<PluginApi['imageInfo']>[1]
    await assert.rejects(api.imageInfo(spec, options), (error: H2KError) => {
      assert.equal(error.code, 'H2K_SANDBOX_UNAVAILABLE', error.message)
      return true
    })
    assert.equal(existsSync(join(dir, 'ran-unsandboxed')), false, 'qemu-img ran outside the sandbox')
  })
})
