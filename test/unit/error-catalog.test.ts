import assert from 'node:assert/strict'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import Database from 'better-sqlite3'

import {ERROR_CATALOG} from '@hyper2kvm/plugin-api/host'
import {H2KError} from '@hyper2kvm/plugin-api'
import {mapForeignError} from '../../src/errors/map-foreign-error.js'
import {runTool} from '../../src/exec/run-tool.js'
import {JobStore, storePath} from '../../src/daemon/store.js'
import {makeTempDir} from '../helpers/temp-dir.js'

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
    assert.deepEqual(Object.keys(error.toJSON()).sort(), ['code', 'exit_code', 'message', 'suggestions'])
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

  it('maps better-sqlite3 errors to H2K_STORE_FAILED with the store path and the SQLite code', () => {
    const db = new Database(':memory:')
    let thrown: unknown
    try {
      db.prepare('SELECT * FROM no_such_table').all()
    } catch (error) {
      thrown = error
    } finally {
      db.close()
    }
    assert.equal((thrown as Error).name, 'SqliteError')
    const mapped = mapForeignError(thrown, {operation: 'Cannot list jobs', path: '/srv/out/.daemon/jobs.db'})
    assert.equal(mapped.code, 'H2K_STORE_FAILED')
    assert.equal(mapped.exitCode, 11)
    assert.equal(mapped.message, 'Cannot list jobs (/srv/out/.daemon/jobs.db): no such table: no_such_table')
    assert.deepEqual(mapped.details, {path: '/srv/out/.daemon/jobs.db', sqliteCode: 'SQLITE_ERROR'})
    assert.equal(mapped.cause, thrown)
    // Another library's error that merely has a code starting with SQLITE_ is not taken for one.
    assert.equal(mapForeignError(Object.assign(new Error('x'), {code: 'SQLITE_BUSY'})).code, 'H2K_INTERNAL')
  })

  it('the job store reports a damaged database as H2K_STORE_FAILED, a missing one read-only as H2K_DAEMON_NOT_RUNNING', () => {
    const {cleanup, dir} = makeTempDir()
    try {
      assert.throws(() => JobStore.open(join(dir, 'never'), {readonly: true}), (error: H2KError) => error.code === 'H2K_DAEMON_NOT_RUNNING')
      mkdirSync(join(dir, '.daemon'))
      writeFileSync(storePath(dir), 'this is not an SQLite database, just text long enough to have a header page'.repeat(20))
      assert.throws(
        () => JobStore.open(dir),
        (error: H2KError) =>
          error.code === 'H2K_STORE_FAILED' && error.message.startsWith(`Cannot open the job store (${storePath(dir)}): `) && error.details.sqliteCode === 'SQLITE_NOTADB',
      )
    } finally {
      cleanup()
    }
  })
})
