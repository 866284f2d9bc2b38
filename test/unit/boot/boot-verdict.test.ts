import assert from 'node:assert/strict'
import {appendFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {judgeLine} from '../../../src/boot/boot-verdict.js'
import {SerialTail, cleanConsoleLine} from '../../../src/boot/serial-tail.js'
import {makeTempDir} from '../../helpers/temp-dir.js'

describe('judgeLine', () => {
  const cases: Array<[string, string | undefined]> = [
    ['h2k-guest login:', 'login-prompt'],
    ['h2k-guest login: ', 'login-prompt'],
    // q35 measured: a kernel message landed on the prompt's line.
    ['h2k-guest login: [   19.573088] kvm: Nested Virtualization enabled', 'login-prompt'],
    ['[  OK  ] Started systemd-logind.service - User Login Management.', undefined],
    ['[   3.2] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)', 'kernel-panic'],
    ['ALERT!  /dev/sda1 does not exist.  Dropping to a shell!', 'initramfs-shell'],
    ['dracut Warning: Dropping to debug shell.', 'initramfs-shell'],
    ['You are in emergency mode. After logging in, type "journalctl -xb" to view', 'emergency-mode'],
    ['Give root password for maintenance', 'emergency-mode'],
    ['No bootable device.', 'no-boot-device'],
    ['BdsDxe: No bootable option or device was found.', 'no-boot-device'],
    ['Shell> ', 'no-boot-device'],
    ['Begin: Waiting for root file system ... ', undefined],
  ]
  for (const [line, reason] of cases) {
    it(`${JSON.stringify(line)} → ${reason ?? 'nothing'}`, () => {
      assert.equal(judgeLine(line, undefined)?.reason, reason)
      if (reason) assert.equal(judgeLine(line, undefined)?.passed, reason === 'login-prompt')
    })
  }

  it('uses a custom pass pattern instead of the login prompt, and failures still win', () => {
    assert.deepEqual(judgeLine('H2K-BOOT-OK', /H2K-BOOT-OK/), {passed: true, reason: 'pattern'})
    assert.equal(judgeLine('h2k-guest login:', /H2K-BOOT-OK/), undefined)
    assert.equal(judgeLine('Kernel panic - not syncing: H2K-BOOT-OK', /H2K-BOOT-OK/)?.reason, 'kernel-panic')
  })
})

describe('SerialTail', () => {
  let dir: string
  let cleanup: () => void
  before(() => ({cleanup, dir} = makeTempDir()))
  after(() => cleanup())

  it('cleans console lines of escapes and carriage returns', () => {
    assert.equal(cleanConsoleLine('[\x1b[0;32m  OK  \x1b[0m] Started foo.\r\r'), '[  OK  ] Started foo.')
    assert.equal(cleanConsoleLine('\x1bc\x1b[?7l\x1b[2J\x1b(BSeaBIOS\x1b]0;title\x07'), 'SeaBIOS')
    assert.equal(cleanConsoleLine('progress 10%\rprogress 99%\r'), 'progress 99%')
  })

  it('hands out each complete line once, exposes the unfinished prompt, keeps only the last lines', async () => {
    const log = join(dir, 'serial.log')
    const missing = new SerialTail(join(dir, 'not-yet.log'))
    await missing.poll(() => assert.fail('no file, no lines'))

    writeFileSync(log, '')
    const tail = new SerialTail(log, 3)
    const seen: string[] = []
    appendFileSync(log, 'one\r\ntwo\r\n\r\nthr')
    await tail.poll((line) => seen.push(line))
    assert.deepEqual(seen, ['one', 'two', ''])
    assert.equal(tail.pendingLine, 'thr')
    appendFileSync(log, 'ee\r\nfour\r\nhost login: ')
    await tail.poll((line) => seen.push(line))
    assert.deepEqual(seen, ['one', 'two', '', 'three', 'four'])
    assert.equal(tail.pendingLine, 'host login:')
    assert.deepEqual(tail.lines, ['three', 'four', 'host login:'])
    assert.equal(tail.lastLine, 'host login:')
    await tail.close()
  })

  it('bounds memory on a console that never prints a newline, and splits UTF-8 safely across reads', async () => {
    const log = join(dir, 'flood.log')
    writeFileSync(log, 'x'.repeat(300_000))
    const tail = new SerialTail(log)
    await tail.poll(() => assert.fail('no complete line'))
    assert.ok(tail.pendingLine.length <= 4096)
    await tail.close()

    const utf8 = join(dir, 'utf8.log')
    // An ellipsis (3 bytes) straddling the 64 KiB read boundary.
    writeFileSync(utf8, Buffer.concat([Buffer.from('a'.repeat(65_535)), Buffer.from('…done\n')]))
    const lines: string[] = []
    const reader = new SerialTail(utf8)
    await reader.poll((line) => lines.push(line))
    assert.equal(lines[0]?.slice(-5), '…done')
    await reader.close()
  })
})
