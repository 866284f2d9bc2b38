import assert from 'node:assert/strict'
import {mkdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {FAKE_KERNEL, makeFakeLinuxGuest} from '../helpers/fake-linux-guest.js'
import {nonSnakeKeys} from '../helpers/json-keys.js'
import {leftovers, runCli, sha256} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/** A BLS entry whose name and title carry escape sequences: the guest is hostile, the terminal must not care. */
const HOSTILE_ENTRY = '/boot/loader/entries/\x1b[2Jevil.conf'
const IMAGE = `/boot/initrd.img-${FAKE_KERNEL}`
const FSTAB = '# /etc/fstab: static file system information.\n/dev/sda1\t/\text4\terrors=remount-ro\t0\t1\n'
/** The fake guest's initramfs image: 'initramfs image (fake)\n' × 64; its update-initramfs appends 20 bytes. */
const IMAGE_BYTES = 1472

interface Change {
  stage: string
  path: string
  before: string | null
  after: string | null
  reason?: string
  diff?: string
  diff_note?: string
  lines_added?: number
  lines_removed?: number
  bytes?: {before: number | null; after: number | null}
}

/** Nothing that reaches a terminal may hold a control character other than newline and tab. */
const assertNoControls = (what: string, text: string): void => {
  const found = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/.exec(text)
  assert.equal(found, null, `${what} carries ${JSON.stringify(found?.[0])}: ${JSON.stringify(text.slice(Math.max(0, (found?.index ?? 0) - 60), (found?.index ?? 0) + 20))}`)
}

/**
 * changes[].diff, convert's summary lines and inspect --plan on a small VMware-like Linux guest (fstab and GRUB
 * on /dev/sda1) made at test time: the stock fixers change it for real, through the real CLI and appliance.
 */
describe('change diffs: inspect --plan shows them without writing anything, convert records and lists them', function () {
  this.timeout(900_000)
  let dir: string
  let cleanup: () => void
  let disk: string
  let digest: string
  let planned: Change[] = []

  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-diffs-'))
    disk = join(dir, 'guest.raw')
    makeFakeLinuxGuest(disk, {
      files: {
        [HOSTILE_ENTRY]: 'title \x1b]0;owned\x07 Debian\nlinux /vmlinuz\noptions root=/dev/sda1 ro\n',
        // inspect prints fstab entries: a label with an escape sequence (stable, so the fixer leaves it alone).
        '/etc/fstab': `${FSTAB}LABEL=\x1b[2Jdata\t/data\text4\tdefaults,nofail\t0\t2\n`,
      },
    })
    digest = sha256(disk)
  })
  after(() => cleanup())

  it('convert\'s fix flags are inspect flags only with --plan: without it they are refused before anything runs', async () => {
    const result = await runCli(['inspect', disk, '--fstab-mode', 'noop', '--json'])
    assert.equal(result.code, 2, result.stderr)
    assert.equal(result.json.error.code, 'H2K_USAGE')
    assert.match(result.json.error.message, /--fstab-mode shapes what the fixers do.*only with --plan/)
  })

  it('inspect --plan (--json and human, side by side): the diffs, no output, no work files left, the disk byte-identical', async () => {
    const tmp = join(dir, 'tmp')
    const cwd = join(dir, 'cwd')
    for (const d of [tmp, cwd]) mkdirSync(d)
    const args = ['inspect', disk, '--plan', '--accel', 'tcg']
    // inspect's work directory (the overlays) goes to the temp directory; libguestfs keeps its appliance cache where it was.
    const env = {LIBGUESTFS_CACHEDIR: process.env.LIBGUESTFS_CACHEDIR ?? process.env.TMPDIR ?? '/var/tmp', TMPDIR: tmp}
    const [json, human] = await Promise.all([runCli([...args, '--json'], {cwd, env}), runCli(args, {cwd, env})])
    assert.equal(json.code, 0, json.stderr)
    assert.equal(human.code, 0, human.stderr)

    // The shape: {inspection, plan: {changes}}, snake_case, no top-level changes (nothing was changed).
    assert.equal(json.json.status, 'planned')
    assert.equal(json.json.inspection.os, 'linux')
    assert.ok(!('changes' in json.json), 'a plan has no top-level changes')
    assert.deepEqual(nonSnakeKeys(json.json, ['.inspection.mountpoints']), [])
    assert.ok(json.json.stages.some((s: {id: string; status: string}) => s.id === 'fixer:initramfs' && s.status === 'ok'), JSON.stringify(json.json.stages))
    planned = json.json.plan.changes as Change[]
    assert.deepEqual(planned.map((c) => c.path).sort(), ['/boot/grub/grub.cfg', HOSTILE_ENTRY, '/etc/fstab', '/etc/initramfs-tools/modules', IMAGE].sort())
    const byPath = new Map(planned.map((c) => [c.path, c]))

    const fstab = byPath.get('/etc/fstab')!
    assert.match(fstab.diff!, /^--- a\/etc\/fstab\n\+\+\+ b\/etc\/fstab\n@@ /)
    assert.match(fstab.diff!, /^-\/dev\/sda1\t\/\text4\t/m)
    assert.match(fstab.diff!, /^\+UUID=[0-9a-f-]{36}\t\/\text4\t/m)
    assert.deepEqual([fstab.lines_added, fstab.lines_removed], [1, 1])
    const grub = byPath.get('/boot/grub/grub.cfg')!
    assert.match(grub.diff!, /^-\tlinux \S+ root=\/dev\/sda1 /m)
    assert.match(grub.diff!, /^\+\tlinux \S+ root=UUID=[0-9a-f-]{36} /m)
    // The hostile entry: C-quoted in the headers, its escape sequences kept as data in the JSON.
    const entry = byPath.get(HOSTILE_ENTRY)!
    assert.match(entry.diff!, /^--- "a\/boot\/loader\/entries\/\\033\[2Jevil\.conf"\n/)
    assert.ok(entry.diff!.includes(' title \x1b]0;owned\x07 Debian\n'), entry.diff)
    // The image is not rebuilt in a plan: its size now, the size after unknown, and why.
    const image = byPath.get(IMAGE)!
    assert.equal(image.diff, undefined)
    assert.equal(image.diff_note, `binary: ${IMAGE_BYTES} bytes → unknown`)
    assert.match(image.reason!, /would get .* appended as an extra cpio member \(or be rebuilt by initramfs-tools if the append form does not apply\) \(dry run: not written, not checked\)/)

    // The human plan: each change and its diff, every guest control character escaped.
    assertNoControls('inspect --plan stdout', human.stdout.replaceAll('\t', ''))
    assertNoControls('inspect --plan stderr', human.stderr.replaceAll('\t', ''))
    assert.match(human.stdout, /^plan: 5 change\(s\) the fixers would make/m)
    assert.match(human.stdout, /^fstab \/data ← LABEL=\\x1b\[2Jdata$/m)
    assert.match(human.stdout, /^would change \/etc\/fstab {2}fixer:fstab {2}\+1 -1$/m)
    assert.match(human.stdout, /^-\/dev\/sda1\t\/\text4\t/m)
    assert.match(human.stdout, /^would change \/boot\/loader\/entries\/\\x1b\[2Jevil\.conf {2}fixer:grub {2}\+1 -1$/m)
    assert.match(human.stdout, /^ title \\x1b\]0;owned\\x07 Debian$/m)
    assert.match(human.stdout, new RegExp(`^would change ${IMAGE.replaceAll('.', '\\.')} {2}fixer:initramfs {2}binary: ${IMAGE_BYTES} bytes → unknown$`, 'm'))

    // Nothing written: the source, the directory it ran in, the temp directory its overlays lived in.
    assert.equal(sha256(disk), digest, 'the source disk is byte-identical')
    assert.deepEqual(leftovers(cwd), [])
    assert.deepEqual(leftovers(tmp), [])
  })

  it('convert: the report carries the same diffs, the rebuilt image its sizes, and the human output one line per file', async () => {
    assert.ok(planned.length > 0, 'the plan ran first')
    const out = join(dir, 'out')
    const result = await runCli(['convert', disk, '-o', out, '--accel', 'tcg', '--name', 'vm'])
    assert.equal(result.code, 0, result.stderr)
    assertNoControls('convert stdout', result.stdout)
    assertNoControls('convert stderr', result.stderr.replaceAll('\t', ''))
    const summary = result.stdout.split('\n').filter((l) => l.startsWith('changed '))
    assert.deepEqual(summary, [
      'changed /etc/fstab  fixer:fstab  +1 -1',
      'changed /boot/loader/entries/\\x1b[2Jevil.conf  fixer:grub  +1 -1',
      'changed /boot/grub/grub.cfg  fixer:grub  +1 -1',
      'changed /etc/initramfs-tools/modules  fixer:initramfs  +11 -0',
      `changed ${IMAGE}  fixer:initramfs  binary: ${IMAGE_BYTES} bytes → ${IMAGE_BYTES + 20} bytes`,
    ])

    const report = JSON.parse(readFileSync(join(out, 'vm.report.json'), 'utf8')) as {changes: Change[]}
    // What the plan showed for the text files is exactly what convert did.
    for (const change of report.changes.filter((c) => c.diff !== undefined)) {
      assert.equal(change.diff, planned.find((p) => p.path === change.path)?.diff, change.path)
    }
    const image = report.changes.find((c) => c.path === IMAGE)!
    // The fake guest has no cpio, gzip, depmod or modprobe: the append form cannot be used, so auto falls back
    // to the guest's tool (this guest's update-initramfs), says why in a warning, and the change names the method.
    assert.match(image.reason!, /^rebuilt by initramfs-tools .*\(method: rebuild\)$/)
    const fellBack = (report as unknown as {warnings: Array<{code: string; message: string}>}).warnings.filter((w) => w.code === 'INITRAMFS_APPEND_FELL_BACK')
    assert.equal(fellBack.length, 1, JSON.stringify(fellBack))
    assert.match(fellBack[0]!.message, new RegExp(`^The initramfs of ${FAKE_KERNEL.replaceAll('.', '\\.')} is rebuilt with the guest's tool instead of appended to: .*\\(missing-tool\\)\\.$`))
    assert.deepEqual(image.bytes, {after: IMAGE_BYTES + 20, before: IMAGE_BYTES})
    assert.equal(image.diff_note, `binary: ${IMAGE_BYTES} bytes → ${IMAGE_BYTES + 20} bytes`)
    assert.equal(sha256(disk), digest, 'the source disk is byte-identical')
  })
})
