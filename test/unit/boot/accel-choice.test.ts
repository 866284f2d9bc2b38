import assert from 'node:assert/strict'
import {chmodSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type AccelCacheKey, defaultCacheDir, readCachedVerdict, writeCachedVerdict} from '../../../src/boot/accel-cache.js'
import {findProbeKernel} from '../../../src/boot/kvm-probe.js'
import type {H2KError} from '@hyper2kvm/plugin-api'
import {chooseAccel, libguestfsEnv} from '../../../src/guest/accel.js'
import {makeTempDir} from '../../helpers/temp-dir.js'

describe('libguestfsEnv', () => {
  it('always selects the direct backend; TCG adds force_tcg', () => {
    assert.deepEqual(libguestfsEnv('kvm', {}), {LIBGUESTFS_BACKEND: 'direct'})
    assert.deepEqual(libguestfsEnv('tcg', {}), {LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg'})
  })

  it('keeps the user\'s own settings (colon-separated, as libguestfs splits them) and drops a conflicting force_*', () => {
    const env = {LIBGUESTFS_BACKEND_SETTINGS: 'gdb:force_kvm:network_bridge=br0'}
    assert.deepEqual(libguestfsEnv('tcg', env), {LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'gdb:network_bridge=br0:force_tcg'})
    assert.deepEqual(libguestfsEnv('kvm', env), {LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'gdb:network_bridge=br0'})
    assert.deepEqual(libguestfsEnv('tcg', {LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg'}), {LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg'})
    // The user's force_tcg must not survive a KVM choice: the variable is overridden with what is left.
    assert.deepEqual(libguestfsEnv('kvm', {LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg'}), {LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: ''})
  })
})

describe('chooseAccel without probing', () => {
  let dir: string
  let cleanup: () => void
  before(() => ({cleanup, dir} = makeTempDir()))
  after(() => cleanup())

  it('honours tcg, and kvm when the device exists', async () => {
    assert.deepEqual(await chooseAccel({preference: 'tcg', kvmDevice: join(dir, 'missing')}), {accel: 'tcg', probed: false, reason: 'TCG requested'})
    const device = join(dir, 'kvm')
    writeFileSync(device, '')
    const choice = await chooseAccel({preference: 'kvm', kvmDevice: device})
    assert.equal(choice.accel, 'kvm')
    assert.equal(choice.probed, false)
  })

  it('refuses kvm clearly when the device is absent', async () => {
    await assert.rejects(chooseAccel({preference: 'kvm', kvmDevice: join(dir, 'missing')}), (error: H2KError) => {
      assert.equal(error.code, 'H2K_USAGE')
      assert.match(error.message, /does not exist/)
      return true
    })
  })

  it('falls back to tcg for auto when there is no KVM device, without a probe or a cache', async () => {
    const cacheDir = join(dir, 'cache-unused')
    const choice = await chooseAccel({cacheDir, kvmDevice: join(dir, 'missing'), preference: 'auto'})
    assert.equal(choice.accel, 'tcg')
    assert.equal(choice.probed, false)
    assert.match(choice.reason, /no .*missing on this host/)
  })
})

describe('accel verdict cache', () => {
  let dir: string
  let cleanup: () => void
  before(() => ({cleanup, dir} = makeTempDir()))
  after(() => cleanup())
  const key: AccelCacheKey = {hostKernel: '6.1.0-56-amd64', kvmDevice: true, qemu: 'QEMU emulator version 7.2.22'}

  it('returns a stored verdict only for the same key and while fresh', async () => {
    const cacheDir = join(dir, 'a', 'b')
    assert.equal(await readCachedVerdict(cacheDir, key), undefined)
    const probedAt = new Date().toISOString()
    assert.equal(await writeCachedVerdict(cacheDir, key, {accel: 'tcg', probedAt, reason: 'hangs'}), undefined)
    assert.deepEqual(await readCachedVerdict(cacheDir, key), {accel: 'tcg', probedAt, reason: 'hangs'})
    assert.equal(await readCachedVerdict(cacheDir, {...key, qemu: 'QEMU emulator version 8.2.0'}), undefined)
    assert.equal(await readCachedVerdict(cacheDir, {...key, hostKernel: '6.12.0'}), undefined)
    assert.equal(await readCachedVerdict(cacheDir, key, Date.now() + 31 * 24 * 3600 * 1000), undefined)
  })

  it('treats a corrupt cache as absent, and reports an unwritable cache instead of failing', async () => {
    const cacheDir = join(dir, 'corrupt')
    mkdirSync(cacheDir)
    writeFileSync(join(cacheDir, 'accel.json'), '{"version":1,"accel":"kvm"')
    assert.equal(await readCachedVerdict(cacheDir, key), undefined)
    writeFileSync(join(cacheDir, 'accel.json'), JSON.stringify({accel: 'fast', key, probedAt: new Date().toISOString(), reason: 'x', version: 1}))
    assert.equal(await readCachedVerdict(cacheDir, key), undefined)

    const blocker = join(dir, 'a-file')
    writeFileSync(blocker, '')
    const warning = await writeCachedVerdict(join(blocker, 'cache'), key, {accel: 'tcg', probedAt: new Date().toISOString(), reason: 'x'})
    assert.match(warning ?? '', /could not cache the verdict/)
    assert.equal(readFileSync(blocker, 'utf8'), '')
  })

  it('follows XDG_CACHE_HOME when absolute', () => {
    assert.equal(defaultCacheDir({XDG_CACHE_HOME: '/var/cache/me'}), '/var/cache/me/hyper2kvm')
    assert.match(defaultCacheDir({XDG_CACHE_HOME: 'relative'}), /\/\.cache\/hyper2kvm$/)
  })
})

describe('findProbeKernel', () => {
  let dir: string
  let cleanup: () => void
  before(() => ({cleanup, dir} = makeTempDir()))
  after(() => cleanup())

  it('picks the newest readable vmlinuz by version, not by string order', async () => {
    const boot = join(dir, 'boot')
    mkdirSync(boot)
    for (const name of ['vmlinuz-6.1.0-9-amd64', 'vmlinuz-6.1.0-56-amd64', 'vmlinuz-5.10.0-30-amd64', 'config-6.1.0-99-amd64']) writeFileSync(join(boot, name), '')
    assert.equal(await findProbeKernel(boot), join(boot, 'vmlinuz-6.1.0-56-amd64'))
    assert.equal(await findProbeKernel(join(dir, 'no-boot')), undefined)
    if (process.getuid?.() !== 0) {
      chmodSync(join(boot, 'vmlinuz-6.1.0-56-amd64'), 0o000)
      assert.equal(await findProbeKernel(boot), join(boot, 'vmlinuz-6.1.0-9-amd64'))
    }
  })
})
