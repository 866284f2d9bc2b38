import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'

import {ERROR_CATALOG} from '../../src/errors/catalog.js'
import {H2KError} from '../../src/errors/h2k-error.js'
import {mapForeignError} from '../../src/errors/map-foreign-error.js'
import {runTool} from '../../src/exec/run-tool.js'

describe('error catalog', () => {
  it('is documented: every code appears in the README error table with its exit code', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    for (const [code, entry] of Object.entries(ERROR_CATALOG)) {
      assert.match(readme, new RegExp(`\\| \`${code}\` \\| ${entry.exitCode} \\|`), `${code} missing from the README error table`)
    }
  })

  it('gives every error its catalog exit code and suggestions', () => {
    const error = new H2KError('H2K_OUTPUT_EXISTS', 'x exists')
    assert.equal(error.exitCode, 5)
    assert.deepEqual(error.suggestions, ERROR_CATALOG.H2K_OUTPUT_EXISTS.suggestions)
    assert.deepEqual(Object.keys(error.toJSON()).sort(), ['code', 'exitCode', 'message', 'suggestions'])
  })

  it('maps a missing tool to H2K_TOOL_MISSING with the Debian package to install', async () => {
    await assert.rejects(runTool('qemu-img-does-not-exist', []), (error: H2KError) => error.code === 'H2K_TOOL_MISSING')
  })

  it('maps a failing tool to H2K_TOOL_FAILED with the tail of its stderr', async () => {
    await assert.rejects(runTool('qemu-img', ['info', '/nonexistent/file.qcow2']), (error: H2KError) => {
      assert.equal(error.code, 'H2K_TOOL_FAILED')
      assert.match(error.message, /nonexistent/)
      return true
    })
  })

  it('maps a cancelled tool to H2K_CANCELLED', async () => {
    const controller = new AbortController()
    const running = runTool('sleep', ['10'], {signal: controller.signal})
    controller.abort()
    await assert.rejects(running, (error: H2KError) => error.code === 'H2K_CANCELLED')
  })

  it('maps file-system errors', () => {
    const enoent = Object.assign(new Error('nope'), {code: 'ENOENT', path: '/x'})
    assert.equal(mapForeignError(enoent).code, 'H2K_INPUT_NOT_FOUND')
    const enospc = Object.assign(new Error('full'), {code: 'ENOSPC'})
    assert.equal(mapForeignError(enospc).code, 'H2K_NO_SPACE')
    assert.equal(mapForeignError(new TypeError('boom')).code, 'H2K_INTERNAL')
  })
})
