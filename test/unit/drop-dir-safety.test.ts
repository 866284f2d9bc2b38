import assert from 'node:assert/strict'
import {chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {BookkeepingDirs} from '../../src/daemon/bookkeeping.js'
import {unsafeInboxPath} from '../../src/daemon/inbox-paths.js'
import {logLine} from '../../src/daemon/log-line.js'
import {outputDirName} from '../../src/daemon/output-name.js'
import {escapeControl} from '../../src/render/escape-control.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('drop directory safety: bookkeeping descriptors, inbox paths, one-line logs', () => {
  let dir: string
  let cleanup: () => void
  beforeEach(() => ({cleanup, dir} = makeTempDir('h2k-dropdir-')))
  afterEach(() => cleanup())

  it('creates missing bookkeeping directories 0750 and reaches them through the held descriptor', () => {
    const bk = new BookkeepingDirs([join(dir, '.errors')])
    assert.deepEqual(bk.check(), [])
    assert.ok(bk.healthy())
    writeFileSync(bk.safe(join(dir, '.errors', 'x.error.json')), '{}')
    assert.equal(readFileSync(join(dir, '.errors', 'x.error.json'), 'utf8'), '{}')
    bk.close()
  })

  it('refuses a symlink and a foreign-owned directory, never following them, and says so once', () => {
    mkdirSync(join(dir, 'target'))
    symlinkSync(join(dir, 'target'), join(dir, '.errors'))
    mkdirSync(join(dir, '.processed'))
    chownSync(join(dir, '.processed'), 65534, 65534)
    const bk = new BookkeepingDirs([join(dir, '.errors'), join(dir, '.processed')])
    const problems = bk.check()
    assert.deepEqual(problems.map((p) => p.dir), [join(dir, '.errors'), join(dir, '.processed')])
    assert.equal(problems[0]!.problem, 'is a symbolic link')
    assert.match(problems[1]!.problem, /owned by uid 65534/)
    assert.equal(bk.check().length, 0, 'a known problem is reported once')
    assert.equal(bk.healthy(), false)
    assert.equal(bk.warnings().length, 2)
    assert.throws(() => bk.safe(join(dir, '.errors', 'a')), (e: {code: string}) => e.code === 'H2K_UNSAFE_PATH')
    assert.deepEqual(readdirSync(join(dir, 'target')), [])
    bk.close()
  })

  it('advises the sticky bit where others may write the directory holding the bookkeeping ones, once, until it is set', () => {
    const bk = new BookkeepingDirs([join(dir, '.errors'), join(dir, '.processed')])
    chmodSync(dir, 0o777)
    const advice = bk.checkParents()
    assert.deepEqual(advice.map((a) => a.dir), [dir])
    assert.match(advice[0]!.advice, /without the sticky bit \(mode 777\).*chmod \+t/)
    assert.deepEqual(bk.checkParents(), [], 'advised once')
    assert.equal(bk.warnings().length, 1)
    chmodSync(dir, 0o1777)
    assert.deepEqual(bk.checkParents(), [])
    assert.deepEqual(bk.warnings(), [])
    chmodSync(dir, 0o755)
    assert.deepEqual(bk.checkParents(), [])
    bk.close()
  })

  it('keeps writing into the checked directory when its name is swapped for a symlink afterwards, and reports the swap', () => {
    mkdirSync(join(dir, 'elsewhere'))
    const bk = new BookkeepingDirs([join(dir, '.errors')])
    bk.check()
    const through = bk.safe(join(dir, '.errors', 'f'))
    renameSync(join(dir, '.errors'), join(dir, 'moved'))
    symlinkSync(join(dir, 'elsewhere'), join(dir, '.errors'))
    writeFileSync(through, 'x')
    assert.deepEqual(readdirSync(join(dir, 'elsewhere')), [])
    assert.deepEqual(readdirSync(join(dir, 'moved')), ['f'])
    assert.equal(bk.check()[0]!.problem, 'is a symbolic link')
    bk.close()
  })

  it('refuses inbox paths through symlinks, hidden directories and non-regular files; a missing one just waits', () => {
    mkdirSync(join(dir, 'sub'))
    mkdirSync(join(dir, 'secret'))
    writeFileSync(join(dir, 'sub', 'ok.raw'), 'x')
    writeFileSync(join(dir, 'secret', 'p.raw'), 'x')
    symlinkSync(join(dir, 'secret'), join(dir, 'lnk'))
    symlinkSync(join(dir, 'secret', 'p.raw'), join(dir, 'sub', 'leaf.raw'))
    assert.equal(unsafeInboxPath(dir, 'sub/ok.raw'), undefined)
    assert.equal(unsafeInboxPath(dir, 'sub/not-yet.raw'), undefined)
    assert.match(unsafeInboxPath(dir, 'lnk/p.raw')!, /goes through a symbolic link \(lnk\)/)
    assert.equal(unsafeInboxPath(dir, 'sub/leaf.raw'), 'is a symbolic link')
    assert.match(unsafeInboxPath(dir, '.processing/abc/v.raw')!, /hidden/)
    assert.equal(unsafeInboxPath(dir, 'sub'), 'is not a regular file')
    for (const why of ['lnk/p.raw', 'sub/leaf.raw'].map((p) => unsafeInboxPath(dir, p)!)) assert.ok(!why.includes(join(dir, 'secret')), 'never says where a link points')
  })

  it('keeps one event on one line and escapes every control character', () => {
    const line = logLine('info', 'file:claimed', {file: 'a\nb\u001b[31m', plain: 'x\u0007y', n: 3}, 'two\nlines\u009b', new Date(0))
    assert.equal(line.split('\n').length, 2)
    assert.ok(!/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(line), JSON.stringify(line))
    assert.match(line, /^1970-01-01T00:00:00\.000Z INFO file:claimed file="a\\nb\\u001b\[31m" plain="x\\u0007y" n=3 two \| lines\\x9b\n$/)
    assert.equal(escapeControl('r\r\nw\t\u2028'), 'r\\r\\nw\\t\\u{2028}')
    assert.equal(outputDirName('evil\n2026 INFO\u001b[31m', 'id'), 'evil_2026 INFO_[31m')
    assert.equal(outputDirName('..', 'id'), '_')
    assert.equal(outputDirName('\n', 'id'), '_')
  })
})
