import assert from 'node:assert/strict'
import {readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {writeFileAtomic} from '../../src/output/commit-outputs.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('writeFileAtomic', () => {
  let dir: string
  let cleanup: () => void
  beforeEach(() => ({cleanup, dir} = makeTempDir()))
  afterEach(() => cleanup())

  it('replaces by default (stats, manifest reports)', async () => {
    writeFileSync(join(dir, 'a.json'), 'old')
    await writeFileAtomic(join(dir, 'a.json'), 'new')
    assert.equal(readFileSync(join(dir, 'a.json'), 'utf8'), 'new')
    assert.deepEqual(readdirSync(dir), ['a.json'])
  })

  it('with replace: false, a file that appeared meanwhile is kept and H2K_OUTPUT_EXISTS thrown, no temp file left', async () => {
    writeFileSync(join(dir, 'a.report.json'), 'theirs')
    await assert.rejects(writeFileAtomic(join(dir, 'a.report.json'), 'ours', {replace: false}), (error: unknown) => error instanceof H2KError && error.code === 'H2K_OUTPUT_EXISTS')
    assert.equal(readFileSync(join(dir, 'a.report.json'), 'utf8'), 'theirs')
    assert.deepEqual(readdirSync(dir), ['a.report.json'])
    await writeFileAtomic(join(dir, 'b.report.json'), 'ours', {replace: false})
    assert.equal(readFileSync(join(dir, 'b.report.json'), 'utf8'), 'ours')
    assert.deepEqual(readdirSync(dir).sort(), ['a.report.json', 'b.report.json'])
  })
})
