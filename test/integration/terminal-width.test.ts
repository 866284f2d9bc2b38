import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {makePatternedRaw} from '../helpers/patterned-image.js'
import {CLI} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const quote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`

/**
 * Run the CLI inside a fresh pty made by `script` with no terminal to copy a size from, so the pty reports
 * 0 rows and 0 columns (the first line printed is `stty size`, checked by the caller). Returns the lines a
 * user sees: escape sequences removed, carriage returns as line ends, empty lines dropped.
 */
async function inZeroSizePty(args: string[], cwd: string): Promise<{size: string; lines: string[]}> {
  const command = `stty size; ${[process.execPath, CLI, ...args].map(quote).join(' ')}`
  const {stdout} = await promisify(execFile)('script', ['-qec', command, '/dev/null'], {cwd, env: {...process.env, NO_COLOR: '1'}})
  // eslint-disable-next-line no-control-regex
  const lines = stdout.replace(/\u001B\[[0-9;?]*[A-Za-z]/g, '').split(/\r\n|\r|\n/).filter((l) => l.trim() !== '')
  return {lines: lines.slice(1), size: lines[0] ?? ''}
}

/** listr2 wraps at `stdout.columns ?? 80`; a pty without a size reports 0, which printed one character per line. */
describe('a terminal that reports 0 columns is rendered 80 wide', function () {
  this.timeout(120_000)
  let dir: string
  let cleanup: () => void
  before(() => {
    ;({cleanup, dir} = makeTempDir())
    makePatternedRaw(join(dir, 'alpha.raw'))
    makePatternedRaw(join(dir, 'beta.raw'))
  })
  after(() => cleanup())

  const assertReadable = (lines: string[], expected: RegExp[]): void => {
    const crumbs = lines.filter((l) => l.trim().length <= 1)
    assert.deepEqual(crumbs, [], `no line of a single character:\n${lines.join('\n')}`)
    for (const pattern of expected) assert.ok(lines.some((l) => pattern.test(l)), `${pattern} on one line:\n${lines.join('\n')}`)
  }

  it('convert: each phase on one line', async () => {
    const {lines, size} = await inZeroSizePty(['convert', 'alpha.raw', '-o', 'out-convert'], dir)
    assert.equal(size, '0 0', 'the pty has no size (else this test proves nothing)')
    assertReadable(lines, [/Load input/, /Convert/, /Verify output/, /report: .*alpha\.report\.json/])
    assert.ok(lines.length < 20, lines.join('\n'))
  })

  it('batch: each job and phase on one line', async () => {
    writeFileSync(join(dir, 'batch.yaml'), 'output_dir: out-batch\njobs:\n  - input: alpha.raw\n  - input: beta.raw\n')
    const {lines, size} = await inZeroSizePty(['batch', 'batch.yaml'], dir)
    assert.equal(size, '0 0')
    assertReadable(lines, [/alpha/, /beta/])
    assert.ok(lines.length < 40, lines.join('\n'))
  })
})
