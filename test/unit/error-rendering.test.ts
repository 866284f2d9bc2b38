import assert from 'node:assert/strict'

import {H2KError, type StageContext} from '@hyper2kvm/plugin-api'

import {errorText, terminalSafeJson} from '../../src/errors/render-error.js'
import {bootVerifier} from '../../src/stages/boot-verifier.js'

// Guest bytes reach error messages (a file system label, an fstab mount point): the terminal must show
// them, never obey them. ESC ] 0 ; sets the window title, ESC [ 2 J clears the screen, 0x9b is an 8-bit CSI.
const HOSTILE = '/srv\u001b]0;owned\u0007\u001b[2J\r\nError H2K_OK: forged line\u009b31m\u007f'
const RAW_CONTROL = /[\p{Cc}\u2028\u2029]/u

describe('errors on the terminal carry no raw control characters', () => {
  it('message, suggestions and the debug stack are escaped; the error stays one visible line each', () => {
    const error = new H2KError('H2K_FIX_FAILED', `cannot fix ${HOSTILE}`, {suggestions: [`look at ${HOSTILE}`]})
    const text = errorText(error, {debug: true})
    const lines = text.trimEnd().split('\n')
    for (const line of lines) assert.doesNotMatch(line, RAW_CONTROL, JSON.stringify(line))
    assert.equal(lines.filter((l) => l.startsWith('Error ')).length, 1, 'no forged Error line')
    assert.ok(text.includes('\\x1b]0;owned\\x07'), 'the bytes are shown, escaped')
    assert.ok(lines.some((l) => l.startsWith('  → look at /srv\\x1b')))
  })

  it('a message of several lines (a job file\'s problems) keeps them, indented under the Error line', () => {
    const error = new H2KError('H2K_JOB_INVALID', 'vm.yaml is not a valid job file:\n/input: must be a string\n/fix: unknown key')
    assert.ok(errorText(error, {debug: false}).startsWith('Error H2K_JOB_INVALID: vm.yaml is not a valid job file:\n  /input: must be a string\n  /fix: unknown key\n  → '))
  })

  it('--json is the same value, with no raw DEL/C1 left for the terminal', () => {
    const error = new H2KError('H2K_FIX_FAILED', HOSTILE)
    const json = terminalSafeJson({error: error.toJSON(), status: 'failed'})
    assert.doesNotMatch(json.replaceAll('\n', ''), RAW_CONTROL)
    assert.equal((JSON.parse(json) as {error: {message: string}}).error.message, HOSTILE)
  })

  it('the boot check\'s error quoting a NO_BOOTLOADER risk (fstab mount points) reaches the terminal escaped', async () => {
    const ctx = {inspection: {risks: [{code: 'NO_BOOTLOADER', message: `no boot loader; mount points ${HOSTILE}`}]}} as unknown as StageContext
    await assert.rejects(bootVerifier.run(ctx), (error: unknown) => {
      assert.ok(error instanceof H2KError && error.code === 'H2K_BOOT_FAILED')
      const text = errorText(error, {debug: false})
      assert.doesNotMatch(text.trimEnd().split('\n').join(''), RAW_CONTROL)
      assert.match(text, /mount points \/srv\\x1b/)
      return true
    })
  })
})
