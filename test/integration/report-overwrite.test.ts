import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {makePatternedRaw} from '../helpers/patterned-image.js'
import {leftovers, runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const reportFormat = (path: string): string => JSON.parse(readFileSync(path, 'utf8')).outputs[0].format

/**
 * `<name>.report.json` is an output like the disks: converting the same VM to another format into the same
 * directory used to replace the first run's report silently. Now it is refused (H2K_OUTPUT_EXISTS) before
 * any work, unless --overwrite.
 */
describe('a report is never replaced without --overwrite', () => {
  let dir: string
  let cleanup: () => void
  before(() => {
    ;({cleanup, dir} = makeTempDir())
    makePatternedRaw(join(dir, 'alpha.raw'))
  })
  after(() => cleanup())

  it('convert: a second run to another format fails before any work; --overwrite replaces the report', async () => {
    const out = join(dir, 'out-convert')
    const report = join(out, 'alpha.report.json')
    const first = await runCli(['convert', join(dir, 'alpha.raw'), '-o', out, '--json'])
    assert.equal(first.code, 0, first.stderr)
    assert.equal(reportFormat(report), 'qcow2')

    const second = await runCli(['convert', join(dir, 'alpha.raw'), '-o', out, '-f', 'raw', '--json'])
    assert.equal(second.code, 5, second.stderr)
    assert.equal(second.json.error.code, 'H2K_OUTPUT_EXISTS')
    assert.equal(second.json.error.details.path, report)
    // Refused right after LOAD: nothing was inspected, converted or written.
    assert.doesNotMatch(second.stderr, /\[(inspect|fix|convert|verify)\]|NO_OS_SIGNATURE/)
    assert.deepEqual(leftovers(out).sort(), ['alpha.qcow2', 'alpha.report.json'])
    assert.equal(reportFormat(report), 'qcow2')

    const forced = await runCli(['convert', join(dir, 'alpha.raw'), '-o', out, '-f', 'raw', '--overwrite', '--json'])
    assert.equal(forced.code, 0, forced.stderr)
    assert.equal(reportFormat(report), 'raw')
    assert.deepEqual(leftovers(out).sort(), ['alpha.qcow2', 'alpha.raw', 'alpha.report.json'])
  })

  it('batch: a re-run to another format fails each job the same way; overwrite: true replaces', async () => {
    const file = join(dir, 'batch.yaml')
    const report = join(dir, 'out-batch', 'alpha.report.json')
    writeFileSync(file, 'output_dir: out-batch\njobs:\n  - input: alpha.raw\n')
    assert.equal((await runCli(['batch', file, '--json'])).code, 0)
    writeFileSync(file, 'output_dir: out-batch\noutput_format: raw\njobs:\n  - input: alpha.raw\n')
    const again = await runCli(['batch', file, '--json'])
    assert.equal(again.code, 1, again.stderr)
    assert.equal(again.json.jobs[0].error.code, 'H2K_OUTPUT_EXISTS')
    assert.equal(reportFormat(report), 'qcow2')
    writeFileSync(file, 'output_dir: out-batch\noutput_format: raw\noverwrite: true\njobs:\n  - input: alpha.raw\n')
    const forced = await runCli(['batch', file, '--json'])
    assert.equal(forced.code, 0, forced.stderr)
    assert.equal(reportFormat(report), 'raw')
  })
})
