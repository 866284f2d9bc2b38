import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {convertFixture, makePatternedRaw} from '../helpers/patterned-image.js'
import {leftovers, runCli, sha256} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/**
 * Inputs and situations that must be refused: a clear code, a non-zero exit, the input byte-identical,
 * and nothing left in the output directory (no output, no .part, no work directory).
 */
describe('refusals: bad inputs and unsafe situations leave nothing behind', () => {
  let dir: string
  let cleanup: () => void
  let good: string
  before(() => {
    ;({cleanup, dir} = makeTempDir())
    good = makePatternedRaw(join(dir, 'good.raw'))
  })
  after(() => cleanup())

  const cases: Array<{name: string; make: (dir: string) => string; args?: string[]; code: string; exit: number}> = [
    {code: 'H2K_INPUT_EMPTY', exit: 3, make: (d) => (writeFileSync(join(d, 'empty.vmdk'), ''), join(d, 'empty.vmdk')), name: 'a zero-byte file'},
    {code: 'H2K_INPUT_UNRECOGNIZED', exit: 3, make: (d) => (writeFileSync(join(d, 'notes.vmdk'), 'just some notes\nnot a disk\n'), join(d, 'notes.vmdk')), name: 'a text file named .vmdk'},
    {code: 'H2K_INPUT_UNRECOGNIZED', exit: 3, make: (d) => (writeFileSync(join(d, 'random.bin.x'), Buffer.alloc(4096, 7)), join(d, 'random.bin.x')), name: 'a file no loader claims'},
    {code: 'H2K_INPUT_NOT_FOUND', exit: 3, make: (d) => join(d, 'does-not-exist.vmdk'), name: 'a missing input'},
    {
      code: 'H2K_UNSAFE_BACKING',
      exit: 4,
      make: (d) => {
        mkdirSync(join(d, 'vm'))
        execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(d, 'outside.qcow2'), '64M'])
        execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', '../outside.qcow2', '-F', 'qcow2', join(d, 'vm', 'child.qcow2')])
        return join(d, 'vm', 'child.qcow2')
      },
      args: ['--allow-backing'],
      name: 'a qcow2 whose backing file is outside its directory, even with --allow-backing',
    },
    {
      code: 'H2K_UNSAFE_BACKING',
      exit: 4,
      make: (d) => {
        execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', '/etc/hostname', '-F', 'raw', join(d, 'abs.qcow2'), '64M'])
        return join(d, 'abs.qcow2')
      },
      args: ['--allow-backing'],
      name: 'a qcow2 whose backing file is an absolute path',
    },
    {
      code: 'H2K_INPUT_CORRUPT',
      exit: 3,
      make: (d) => {
        const path = convertFixture(good, join(d, 'trunc.qcow2'), 'qcow2')
        execFileSync('truncate', ['-s', '1M', path])
        return path
      },
      name: 'a truncated qcow2',
    },
  ]

  for (const c of cases) {
    it(`refuses ${c.name} with ${c.code}`, async () => {
      const caseDir = join(dir, c.code + '-' + c.name.replace(/\W+/g, '-'))
      mkdirSync(caseDir)
      const input = c.make(caseDir)
      const before = existsSync(input) ? sha256(input) : undefined
      const out = join(caseDir, 'out')
      const result = await runCli(['convert', input, '--output-dir', out, '--json', ...(c.args ?? [])])
      assert.equal(result.json?.error?.code, c.code, result.stdout + result.stderr)
      assert.equal(result.code, c.exit)
      assert.ok(result.json.error.suggestions.length > 0)
      if (before) assert.equal(sha256(input), before, 'input unchanged')
      assert.deepEqual(leftovers(out), [])
    })
  }

  it('refuses to overwrite an existing output without --overwrite, and replaces it with it', async () => {
    const out = join(dir, 'exists')
    mkdirSync(out)
    writeFileSync(join(out, 'good.qcow2'), 'precious')
    const refused = await runCli(['convert', good, '-o', out, '--json'])
    assert.equal(refused.code, 5)
    assert.equal(refused.json.error.code, 'H2K_OUTPUT_EXISTS')
    assert.deepEqual(leftovers(out), ['good.qcow2'])
    assert.equal(execFileSync('cat', [join(out, 'good.qcow2')], {encoding: 'utf8'}), 'precious')
    const replaced = await runCli(['convert', good, '-o', out, '--overwrite', '--json'])
    assert.equal(replaced.code, 0, replaced.stderr)
    assert.deepEqual(leftovers(out).sort(), ['good.qcow2', 'good.report.json'])
  })

  it('refuses before copying when the output cannot fit (a 2 MiB tmpfs)', async () => {
    const mnt = join(dir, 'small-fs')
    mkdirSync(mnt)
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2M', 'tmpfs', mnt])
    try {
      const result = await runCli(['convert', good, '-o', mnt, '--json'])
      assert.equal(result.code, 5)
      assert.equal(result.json.error.code, 'H2K_NO_SPACE')
      assert.ok(result.json.error.details.needed > result.json.error.details.available)
      assert.deepEqual(leftovers(mnt), [])
      // Forcing past the estimate makes qemu-img hit ENOSPC for real: still a clean refusal.
      const forced = await runCli(['convert', good, '-o', mnt, '--skip-space-check', '--format', 'raw', '--json'])
      assert.equal(forced.json.error.code, 'H2K_NO_SPACE', forced.stdout)
      assert.deepEqual(leftovers(mnt), [])
    } finally {
      execFileSync('umount', [mnt])
    }
  })

  it('cancels cleanly on SIGINT: exit 130, no qemu-img left running, no .part', async function () {
    this.timeout(180_000)
    const big = join(dir, 'random.raw')
    execFileSync('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', 'count=384', 'status=none'])
    const out = join(dir, 'cancelled')
    let pid = 0
    const running = runCli(['convert', big, '-o', out, '--compression', 'zlib', '--json'], {onSpawn: (p) => (pid = p)})
    const deadline = Date.now() + 60_000
    while (!existsSync(join(out, 'random.qcow2.part')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    assert.ok(existsSync(join(out, 'random.qcow2.part')), 'conversion started')
    process.kill(pid, 'SIGINT')
    const result = await running
    assert.equal(result.code, 130, result.stderr)
    assert.equal(result.json.error.code, 'H2K_CANCELLED')
    assert.deepEqual(leftovers(out), [])
    const children = execFileSync('ps', ['-eo', 'args'], {encoding: 'utf8'}).split('\n').filter((line) => line.includes('qemu-img') && line.includes(big))
    assert.deepEqual(children, [])
  })
})
