import assert from 'node:assert/strict'

import type {FileChange, RecordedChange} from '@hyper2kvm/plugin-api'
import {changeDiffLines, changeSummaryLine} from '../../src/render/change-lines.js'
import {escapeControl} from '../../src/render/escape-control.js'
import {PlainRenderer} from '../../src/render/plain-renderer.js'
import {DIFF_LINE_LIMIT, DIFF_MAX_EDITS, DIFF_TEXT_LIMIT, diffChange} from '../../src/stages/change-diff.js'
import {ChangeList} from '../../src/stages/change-list.js'

const FSTAB_BEFORE = '# /etc/fstab\n/dev/sda1\t/\text4\terrors=remount-ro\t0 1\n/dev/sda2\tnone\tswap\tsw\t0 0\nproc\t/proc\tproc\tdefaults\t0 0\n'
const FSTAB_AFTER = FSTAB_BEFORE.replace('/dev/sda1', 'UUID=0f3c')
const lines = (n: number, prefix: string): string => Array.from({length: n}, (_, i) => `${prefix}${i}\n`).join('')
/** Every line kept, the order reversed: no line is missing on either side, yet the diff must move nearly all. */
const REVERSED = lines(DIFF_MAX_EDITS, 'line ').split('\n').slice(0, -1).reverse().map((l) => `${l}\n`).join('')

interface Case {
  name: string
  change: Pick<FileChange, 'path' | 'before' | 'after' | 'bytes'>
  /** The whole diff text, when the case pins it. */
  diff?: string
  /** Or: the note given instead of a diff. */
  note?: string | RegExp
  added?: number
  removed?: number
}

/** The bounding, binary and shape cases of the diff the host derives for every recorded change. */
const CASES: Case[] = [
  {
    added: 1,
    change: {after: FSTAB_AFTER, before: FSTAB_BEFORE, path: '/etc/fstab'},
    diff: '--- a/etc/fstab\n+++ b/etc/fstab\n@@ -1,4 +1,4 @@\n # /etc/fstab\n-/dev/sda1\t/\text4\terrors=remount-ro\t0 1\n+UUID=0f3c\t/\text4\terrors=remount-ro\t0 1\n /dev/sda2\tnone\tswap\tsw\t0 0\n proc\t/proc\tproc\tdefaults\t0 0\n',
    name: 'an edited text file: a unified diff with a/ and b/ paths and 3 lines of context',
    removed: 1,
  },
  {
    added: 2,
    change: {after: 'add_drivers+=" virtio_blk "\nhostonly="no"\n', before: null, path: '/etc/dracut.conf.d/h2k.conf'},
    diff: '--- /dev/null\n+++ b/etc/dracut.conf.d/h2k.conf\n@@ -0,0 +1,2 @@\n+add_drivers+=" virtio_blk "\n+hostonly="no"\n',
    name: 'a created file: from /dev/null',
    removed: 0,
  },
  {
    added: 0,
    change: {after: null, before: '(hd0) /dev/sda\n', path: '/boot/grub/device.map'},
    diff: '--- a/boot/grub/device.map\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-(hd0) /dev/sda\n',
    name: 'a deleted file: to /dev/null',
    removed: 1,
  },
  {
    added: 1,
    change: {after: 'a\nB', before: 'a\nb', path: 'etc/x'},
    diff: '--- a/etc/x\n+++ b/etc/x\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+B\n\\ No newline at end of file\n',
    name: 'no newline at the end, and a path without its leading slash',
    removed: 1,
  },
  {change: {after: 'same\n', before: 'same\n', path: '/etc/same'}, name: 'a change recorded with the same text', note: 'no difference in the text'},
  {change: {after: '', before: null, path: '/etc/empty'}, name: 'an empty file created', note: 'created, empty'},
  {change: {after: 'ELF\0\x01\x02', before: 'ELF\0\x01', path: '/usr/bin/tool'}, name: 'binary text (a NUL byte): sizes, no diff', note: 'binary: 5 bytes → 6 bytes'},
  {change: {after: 'text now\n', before: 'bin\0ary', path: '/etc/was-binary'}, name: 'binary on one side only', note: 'binary: 7 bytes → 9 bytes'},
  {
    change: {after: null, before: null, bytes: {after: 33_554_432, before: 31_457_280}, path: '/boot/initrd.img-6.1.0-18-amd64'},
    name: 'a rebuilt image (no text, its sizes)',
    note: 'binary: 31457280 bytes → 33554432 bytes',
  },
  {
    change: {after: null, before: null, bytes: {after: null, before: 31_457_280}, path: '/boot/initrd.img-6.1.0-18-amd64'},
    name: 'an image a dry run would rebuild (size after not known)',
    note: 'binary: 31457280 bytes → unknown',
  },
  {change: {after: null, before: null, path: 'initramfs of 6.1.0'}, name: 'no text and no sizes', note: 'no text recorded'},
  {
    change: {after: 'x'.repeat(DIFF_TEXT_LIMIT + 1), before: 'small\n', path: '/boot/grub/grub.cfg'},
    name: 'a side over the byte limit',
    note: `too large for a diff: 6 bytes → ${DIFF_TEXT_LIMIT + 1} bytes (limit ${DIFF_TEXT_LIMIT} bytes)`,
  },
  {
    change: {after: lines(DIFF_LINE_LIMIT + 5, ''), before: lines(3, ''), path: '/etc/hosts'},
    name: 'a side over the line limit',
    note: `too large for a diff: 4 lines → ${DIFF_LINE_LIMIT + 6} lines (limit ${DIFF_LINE_LIMIT} lines)`,
  },
  {
    change: {after: lines(DIFF_MAX_EDITS, 'new '), before: lines(DIFF_MAX_EDITS, 'old '), path: '/etc/all-different'},
    name: 'two texts that differ everywhere (found in linear time)',
    note: /^too many differences for a diff \(over 1000 changed lines\)/,
  },
  {
    change: {after: REVERSED, before: lines(DIFF_MAX_EDITS, 'line '), path: '/etc/reordered'},
    name: 'the same lines in another order, past the budget (Myers itself gives up)',
    note: /^too many differences for a diff/,
  },
  {
    added: 0,
    change: {after: 'ok\n', before: 'ok\n\x1b]0;owned\x07\x1b[2J\r\n', path: '/etc/motd'},
    diff: '--- a/etc/motd\n+++ b/etc/motd\n@@ -1,2 +1,1 @@\n ok\n-\x1b]0;owned\x07\x1b[2J\r\n',
    name: 'hostile content: the diff carries the guest\'s bytes as they are (the JSON escapes them)',
    removed: 1,
  },
]

describe('changes[].diff: the unified diff the host derives when a change is recorded', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const result = diffChange(c.change)
      if (c.diff !== undefined) {
        assert.equal(result.diff, c.diff)
        assert.equal(result.diffNote, undefined)
        assert.equal(result.linesAdded, c.added)
        assert.equal(result.linesRemoved, c.removed)
      } else {
        assert.equal(result.diff, undefined, 'no diff')
        assert.equal(result.linesAdded, undefined)
        if (typeof c.note === 'string') assert.equal(result.diffNote, c.note)
        else assert.match(result.diffNote ?? '', c.note!)
        assert.ok(!result.diffNote!.includes('\n'), 'a note is one line')
      }
    })
  }

  it('the reordered case passes the linear pre-check, so it is Myers\' own budget that turns it away', () => {
    // Guards the case above: were it turned away by the pre-check, Myers' give-up would go untested.
    const sorted = (text: string) => text.split('\n').sort().join('\n')
    assert.equal(sorted(REVERSED), sorted(lines(DIFF_MAX_EDITS, 'line ')))
  })

  it('a hostile path cannot add a header line: the headers C-quote it as git does, one line each', () => {
    const {diff} = diffChange({after: 'b\n', before: 'a\n', path: '/etc/x\n+++ b/etc/shadow\x1b[2J'})
    assert.deepEqual(diff!.split('\n').slice(0, 3), ['--- "a/etc/x\\n+++ b/etc/shadow\\033[2J"', '+++ "b/etc/x\\n+++ b/etc/shadow\\033[2J"', '@@ -1,1 +1,1 @@'])
    assert.equal(diff!.split('\n').filter((l) => l.startsWith('+++ ')).length, 1)
  })
})

describe('what a terminal sees of a change (the renderer escapes the guest\'s text)', () => {
  const recorded = (change: FileChange): RecordedChange => ({...change, ...diffChange(change)})

  it('convert\'s summary line: path, stage, +added -removed', () => {
    assert.equal(changeSummaryLine(recorded({after: FSTAB_AFTER, before: FSTAB_BEFORE, path: '/etc/fstab', stage: 'fixer:fstab'})), 'changed /etc/fstab  fixer:fstab  +1 -1')
    assert.equal(
      changeSummaryLine(recorded({after: null, before: null, bytes: {after: 20, before: 10}, path: '/boot/initrd.img-6.1', stage: 'fixer:initramfs'})),
      'changed /boot/initrd.img-6.1  fixer:initramfs  binary: 10 bytes → 20 bytes',
    )
  })

  it('a hostile path, stage, reason and content reach the terminal with no control character but tabs', () => {
    const change = recorded({
      after: 'ok\n\x1b[31mred\x1b[0m\x9b2J\u2028x\n',
      before: 'ok\n\x1b]0;title\x07\r\n',
      path: '/etc/a\x1b[2J\nforged line',
      reason: 'because\x1b[1A',
      stage: 'fixer:x\r',
    })
    const shown = changeDiffLines(change)
    for (const line of [...shown, changeSummaryLine(change)]) assert.ok(!/[\p{Cc}\u2028\u2029]/u.test(line.replaceAll('\t', '')), JSON.stringify(line))
    // One terminal line per diff line: summary, why, 2 headers, hunk header, context, 1 removed, 2 added.
    assert.equal(shown.length, 2 + change.diff!.trimEnd().split('\n').length)
    assert.ok(shown.some((l) => l === '+\\x1b[31mred\\x1b[0m\\x9b2J\\u{2028}x'), JSON.stringify(shown))
    assert.ok(shown.some((l) => l === '-\\x1b]0;title\\x07\\r'), JSON.stringify(shown))
  })

  it('progress, warning and log lines that quote a guest\'s file name stay one line without control characters', () => {
    const written: string[] = []
    const plain = new PlainRenderer({write: (line) => written.push(line)}, 'info')
    const path = '/boot/loader/entries/\x1b[2Jevil\n.conf'
    plain.onEvent({level: 'info', message: `fixer:grub: changed ${path} (1 edit(s))`, type: 'log'})
    plain.onEvent({type: 'warning', warning: {code: 'FIX_WARNING', message: `${path}: left alone`}})
    plain.onEvent({phase: 'fix', progress: {message: `reading ${path}`, percent: 100}, stage: 'fixer:grub', type: 'progress'})
    assert.deepEqual(written, [
      'info: fixer:grub: changed /boot/loader/entries/\\x1b[2Jevil\\n.conf (1 edit(s))',
      'warning FIX_WARNING: /boot/loader/entries/\\x1b[2Jevil\\n.conf: left alone',
      '[fix] fixer:grub reading /boot/loader/entries/\\x1b[2Jevil\\n.conf 100%',
    ])
  })

  it('tabs stay tabs in a shown diff (fstab\'s columns), everything else escapes as before', () => {
    assert.equal(escapeControl('a\tb\x1b', {keepTab: true}), 'a\tb\\x1b')
    assert.equal(escapeControl('a\tb'), 'a\\tb')
  })
})

describe('ChangeList: the host records, and derives the diff itself', () => {
  it('every recorded change carries the diff; a diff or unknown key a stage passes is not taken', () => {
    const list = new ChangeList()
    const forged = {after: 'b\n', before: 'a\n', diff: '--- forged\n', extra: 'x', linesAdded: 99, path: '/etc/x', stage: 'fixer:third-party'} as unknown as FileChange
    list.record(forged)
    const [change] = list.all
    assert.equal(change!.diff, '--- a/etc/x\n+++ b/etc/x\n@@ -1,1 +1,1 @@\n-a\n+b\n')
    assert.equal(change!.linesAdded, 1)
    assert.ok(!('extra' in change!))
  })

  it('sizes a stage gives must be counts; anything else is unknown', () => {
    const list = new ChangeList()
    list.record({after: null, before: null, bytes: {after: -1, before: 12} as {after: number; before: number}, path: '/boot/img', stage: 'fixer:y'})
    assert.deepEqual(list.all[0]!.bytes, {after: null, before: 12})
    assert.equal(list.all[0]!.diffNote, 'binary: 12 bytes → unknown')
  })
})
