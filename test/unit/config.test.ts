import assert from 'node:assert/strict'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import type {H2KError} from '@hyper2kvm/plugin-api'
import {configSearchPath, loadConfig} from '../../src/jobs/config.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('configuration discovery and layering', () => {
  let dir: string
  let cleanup: () => void
  beforeEach(() => ({cleanup, dir} = makeTempDir()))
  afterEach(() => cleanup())

  it('searches ./hyper2kvm.yaml, ~/.config/hyper2kvm/config.yaml, /etc/xdg/hyper2kvm/config.yaml, /etc/hyper2kvm/config.yaml in that order', () => {
    const standard = ['/w/hyper2kvm.yaml', '/h/.config/hyper2kvm/config.yaml', '/etc/xdg/hyper2kvm/config.yaml', '/etc/hyper2kvm/config.yaml']
    assert.deepEqual(configSearchPath('/w', '/h', {}), standard)
    assert.deepEqual(configSearchPath('/w', '/h', {XDG_CONFIG_DIRS: ''}), standard, 'empty is unset (XDG rule)')
  })

  it('honours $XDG_CONFIG_DIRS: each absolute entry in order, after the user directory and before /etc/hyper2kvm; relative entries ignored', async () => {
    assert.deepEqual(configSearchPath('/w', '/h', {XDG_CONFIG_DIRS: '/a:rel::/b/', XDG_CONFIG_HOME: '/x'}), [
      '/w/hyper2kvm.yaml',
      '/x/hyper2kvm/config.yaml',
      '/a/hyper2kvm/config.yaml',
      '/b/hyper2kvm/config.yaml',
      '/etc/hyper2kvm/config.yaml',
    ])
    assert.deepEqual(configSearchPath('/w', '/h', {XDG_CONFIG_DIRS: '/etc'}), ['/w/hyper2kvm.yaml', '/h/.config/hyper2kvm/config.yaml', '/etc/hyper2kvm/config.yaml'], 'listed once')
    // A file found there is used; the first system directory that has one wins.
    for (const sys of ['sys1', 'sys2']) {
      mkdirSync(join(dir, sys, 'hyper2kvm'), {recursive: true})
      writeFileSync(join(dir, sys, 'hyper2kvm', 'config.yaml'), `output_format: ${sys === 'sys1' ? 'raw' : 'vdi'}\n`)
    }
    const config = await loadConfig({cwd: dir, env: {XDG_CONFIG_DIRS: `${join(dir, 'missing')}:${join(dir, 'sys1')}:${join(dir, 'sys2')}`}, home: dir})
    assert.equal(config.file, join(dir, 'sys1', 'hyper2kvm', 'config.yaml'))
    assert.equal(config.settings.output_format.value, 'raw')
  })

  it('honours $XDG_CONFIG_HOME when it is an absolute path (a relative one is ignored, as the XDG rule says)', async () => {
    assert.deepEqual(configSearchPath('/w', '/h', {XDG_CONFIG_DIRS: '/s', XDG_CONFIG_HOME: '/x'}), ['/w/hyper2kvm.yaml', '/x/hyper2kvm/config.yaml', '/s/hyper2kvm/config.yaml', '/etc/hyper2kvm/config.yaml'])
    assert.deepEqual(configSearchPath('/w', '/h', {XDG_CONFIG_DIRS: '/s', XDG_CONFIG_HOME: 'rel'}), ['/w/hyper2kvm.yaml', '/h/.config/hyper2kvm/config.yaml', '/s/hyper2kvm/config.yaml', '/etc/hyper2kvm/config.yaml'])
    mkdirSync(join(dir, 'xdg', 'hyper2kvm'), {recursive: true})
    writeFileSync(join(dir, 'xdg', 'hyper2kvm', 'config.yaml'), 'output_format: raw\n')
    const config = await loadConfig({cwd: dir, env: {XDG_CONFIG_HOME: join(dir, 'xdg')}, home: dir})
    assert.equal(config.file, join(dir, 'xdg', 'hyper2kvm', 'config.yaml'))
  })

  it('uses built-in defaults when no file exists', async () => {
    const config = await loadConfig({cwd: dir, env: {}, home: dir})
    assert.equal(config.file, undefined)
    assert.deepEqual(config.settings.output_format, {source: 'default', value: 'qcow2'})
    assert.deepEqual(config.flags, {})
  })

  it('takes the first file found; the environment overrides it; each value says where it came from', async () => {
    mkdirSync(join(dir, 'home', '.config', 'hyper2kvm'), {recursive: true})
    writeFileSync(join(dir, 'home', '.config', 'hyper2kvm', 'config.yaml'), 'output_format: vdi\n')
    const home = await loadConfig({cwd: dir, env: {}, home: join(dir, 'home')})
    assert.equal(home.settings.output_format.value, 'vdi')
    writeFileSync(join(dir, 'hyper2kvm.yaml'), 'out_format: raw\noutput_dir: converted\nfix_grub: false\n')
    const config = await loadConfig({cwd: dir, env: {HYPER2KVM_FIX_GRUB: 'yes', HYPER2KVM_FSTAB_MODE: 'noop', HYPER2KVM_UNRELATED: 'x'}, home: join(dir, 'home')})
    assert.equal(config.file, join(dir, 'hyper2kvm.yaml'))
    assert.deepEqual(config.settings.output_format, {source: join(dir, 'hyper2kvm.yaml'), value: 'raw'})
    assert.deepEqual(config.settings.fix_grub, {source: 'env HYPER2KVM_FIX_GRUB', value: true})
    assert.deepEqual(config.settings.fstab_mode, {source: 'env HYPER2KVM_FSTAB_MODE', value: 'noop'})
    assert.equal(config.flags.format, 'raw')
    assert.equal(config.flags['output-dir'], join(dir, 'converted'))
    assert.equal(config.flags['fix-grub'], true)
  })

  it('--config overrides discovery and must exist; invalid files and variables are refused precisely', async () => {
    writeFileSync(join(dir, 'hyper2kvm.yaml'), 'output_format: raw\n')
    writeFileSync(join(dir, 'site.yaml'), 'compres: true\n')
    await assert.rejects(loadConfig({configPath: join(dir, 'site.yaml'), cwd: dir, env: {}}), (e: H2KError) => e.code === 'H2K_JOB_INVALID' && e.message.includes('site.yaml:1:1: compres: unknown key "compres"; did you mean "compress"?'))
    await assert.rejects(loadConfig({configPath: join(dir, 'nope.yaml'), env: {}}), (e: H2KError) => e.code === 'H2K_INPUT_NOT_FOUND')
    writeFileSync(join(dir, 'site.yaml'), 'input: disk.vmdk\n')
    await assert.rejects(loadConfig({configPath: join(dir, 'site.yaml'), env: {}}), (e: H2KError) => e.message.includes('"input" belongs in a job file'))
    await assert.rejects(loadConfig({cwd: dir, env: {HYPER2KVM_COMPRESS: 'maybe'}, home: dir}), (e: H2KError) => e.code === 'H2K_JOB_INVALID' && e.message.includes('HYPER2KVM_COMPRESS'))
  })

  it('accepts a daemon config (its conversion defaults apply)', async () => {
    writeFileSync(join(dir, 'daemon.yaml'), 'command: daemon\nwatch_dir: /q\nout_format: raw\ncompress: false\nfix: false\ninitramfs_drivers: [virtio_blk]\n')
    const config = await loadConfig({configPath: join(dir, 'daemon.yaml'), env: {}})
    assert.equal(config.settings.output_format.value, 'raw')
    assert.equal(config.flags.fix, false)
    assert.equal(config.flags['initramfs-drivers'], 'virtio_blk')
  })
})
