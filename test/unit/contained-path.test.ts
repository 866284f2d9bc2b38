import assert from 'node:assert/strict'
import {mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type H2KError, resolveContainedFile, safeFileStem} from '@hyper2kvm/plugin-api'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('resolveContainedFile', () => {
  let dir: string
  let cleanup: () => void
  before(() => {
    ;({cleanup, dir} = makeTempDir())
    mkdirSync(join(dir, 'vm'))
    writeFileSync(join(dir, 'vm', 'disk-flat.vmdk'), 'x')
    writeFileSync(join(dir, 'outside.vmdk'), 'x')
    symlinkSync(join(dir, 'outside.vmdk'), join(dir, 'vm', 'link.vmdk'))
    symlinkSync('disk-flat.vmdk', join(dir, 'vm', 'inside-link.vmdk'))
  })
  after(() => cleanup())
  const opts = {referrer: 'disk.vmdk', what: 'extent'}
  const code = (expected: string) => (error: H2KError) => error.code === expected

  it('accepts a plain name and a symlink that stays inside', async () => {
    assert.equal(await resolveContainedFile(join(dir, 'vm'), 'disk-flat.vmdk', opts), join(dir, 'vm', 'disk-flat.vmdk'))
    assert.equal(await resolveContainedFile(join(dir, 'vm'), 'inside-link.vmdk', opts), join(dir, 'vm', 'disk-flat.vmdk'))
  })

  for (const name of ['/etc/passwd', '../outside.vmdk', 'a/../../outside.vmdk', 'C:\\vm\\disk.vmdk', 'file:///etc/passwd', 'http://x/y.vmdk', '']) {
    it(`refuses ${JSON.stringify(name)}`, async () => {
      await assert.rejects(resolveContainedFile(join(dir, 'vm'), name, opts), code('H2K_UNSAFE_PATH'))
    })
  }

  it('refuses a symlink that leaves the directory', async () => {
    await assert.rejects(resolveContainedFile(join(dir, 'vm'), 'link.vmdk', opts), code('H2K_UNSAFE_PATH'))
  })

  it('reports a missing file as H2K_EXTENT_MISSING', async () => {
    await assert.rejects(resolveContainedFile(join(dir, 'vm'), 'gone.vmdk', opts), code('H2K_EXTENT_MISSING'))
  })
})

describe('safeFileStem', () => {
  it('keeps names safe as file names', () => {
    assert.equal(safeFileStem('../../etc/passwd'), 'etc_passwd')
    assert.equal(safeFileStem('Web Server (prod)'), 'Web_Server_prod')
    assert.equal(safeFileStem('...'), 'disk')
    assert.equal(safeFileStem('db01.example.com'), 'db01.example.com')
  })
})
