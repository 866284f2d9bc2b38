import {strict as assert} from 'node:assert'
import {execFileSync} from 'node:child_process'
import {copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {INITRAMFS_VIRTIO_FN} from '../../plugins/linux/src/guest-facts.js'
import {APPEND_SCRIPT, appendCall, parseAppendOutput} from '../../plugins/linux/src/initramfs-append.js'
import {DEFAULT_INITRAMFS_DRIVERS} from '../../plugins/linux/src/transforms/initramfs-drivers.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/**
 * The append form of fixer:initramfs, run on the host with real tools (cpio, gzip, zstd, depmod, modprobe)
 * and real kernel modules: the host's module tree (the one libguestfs' appliance boots) stands in for the
 * guest's. A fake guest root holds that kernel's module index, the modules the drivers need and a
 * kernel config; its initramfs is built per case. The script is the one the fixer runs inside the guest,
 * with a root prefix instead of /.
 */
const KERNEL = readdirSync('/lib/modules').find((k) => existsSync(join('/lib/modules', k, 'modules.dep')))
const DRIVERS = [...DEFAULT_INITRAMFS_DRIVERS, 'virtio_console']

function sh(script: string, cwd?: string): string {
  return execFileSync('sh', ['-c', script], {cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024})
}

/** The module files (relative to the module tree) modprobe loads for these modules on the host's kernel. */
function closure(names: readonly string[]): string[] {
  const files = new Set<string>()
  for (const name of names) {
    let out = ''
    try {
      out = execFileSync('modprobe', ['-S', KERNEL!, '--show-depends', name], {encoding: 'utf8'})
    } catch {
      continue // not a module on this kernel (built in, or absent): the script skips it too
    }
    for (const m of out.matchAll(/^insmod (\S+)/gm)) files.add(m[1]!.replace(/^.*\/modules\/[^/]+\//, ''))
  }
  return [...files]
}

interface ImageSpec {
  /** Where the image keeps its modules: `usr/lib` (merged /usr, dracut) or `lib`. */
  layout: 'usr/lib' | 'lib'
  /** gzip-n9: the header the appended member has too (`gzip -n -9`), at offset 0 only. */
  compress: 'gzip' | 'gzip-n9' | 'zstd' | 'none-of-ours'
  /** Modules (names) the image already holds, with their index. */
  modules: string[]
  /** Extra files in the image: path → content. */
  files?: Record<string, string>
}

interface Case {
  name: string
  image: ImageSpec
  /** The kernel config line the guest has (undefined: no config file). */
  config?: string
  /** Guest files other fixers changed: path → new content (null: removed). */
  changed?: Record<string, string | null>
  /** A module the image holds that the guest's tree does not. */
  foreignModule?: boolean
  expect: {kind: 'appended'} | {kind: 'none'} | {kind: 'fallback'; reason: string}
  /** Files the appended member must carry: image path → content. */
  carried?: Record<string, string>
}

const CASES: Case[] = [
  {config: 'CONFIG_RD_GZIP=y', expect: {kind: 'appended'}, image: {compress: 'gzip', layout: 'usr/lib', modules: ['dm_mod']}, name: 'a dracut-like gzip image under usr/lib'},
  {config: 'CONFIG_RD_GZIP=y', expect: {kind: 'appended'}, image: {compress: 'zstd', layout: 'lib', modules: ['dm_mod', 'ahci']}, name: 'an initramfs-tools-like zstd image under lib'},
  {
    carried: {'conf/conf.d/resume': 'RESUME=UUID=0b7e1c1a-0000-4000-8000-000000000001\n', 'etc/modprobe.d/h2k-test.conf': '# blacklist virtio_net\n'},
    changed: {'/etc/initramfs-tools/conf.d/resume': 'RESUME=UUID=0b7e1c1a-0000-4000-8000-000000000001\n', '/etc/modprobe.d/h2k-test.conf': '# blacklist virtio_net\n', '/etc/not-in-image.conf': 'x\n'},
    config: 'CONFIG_RD_GZIP=y',
    expect: {kind: 'appended'},
    image: {compress: 'gzip', files: {'conf/conf.d/resume': 'RESUME=/dev/sda5\n', 'etc/modprobe.d/h2k-test.conf': 'blacklist virtio_net\n'}, layout: 'lib', modules: ['dm_mod']},
    name: 'files other fixers changed ride along where the image has a copy',
  },
  {
    changed: {'/etc/modprobe.d/h2k-test.conf': null},
    config: 'CONFIG_RD_GZIP=y',
    expect: {kind: 'fallback', reason: 'image-file-removed'},
    image: {compress: 'gzip', files: {'etc/modprobe.d/h2k-test.conf': 'blacklist virtio_net\n'}, layout: 'lib', modules: ['dm_mod']},
    name: 'a file the image holds was removed by another fixer',
  },
  {config: 'CONFIG_RD_GZIP=y', expect: {kind: 'none'}, image: {compress: 'gzip', layout: 'lib', modules: DRIVERS}, name: 'an image that already holds every driver is left as it is'},
  {config: '# CONFIG_RD_GZIP is not set', expect: {kind: 'fallback', reason: 'kernel-without-gzip-initramfs'}, image: {compress: 'gzip', layout: 'lib', modules: []}, name: 'a kernel that cannot unpack a gzip member'},
  {expect: {kind: 'fallback', reason: 'kernel-without-gzip-initramfs'}, image: {compress: 'gzip', layout: 'lib', modules: []}, name: 'a kernel without a config file'},
  {config: 'CONFIG_RD_GZIP=y', expect: {kind: 'fallback', reason: 'image-not-listed'}, image: {compress: 'none-of-ours', layout: 'lib', modules: []}, name: 'an image in a format we cannot list'},
  {config: 'CONFIG_RD_GZIP=y', expect: {kind: 'fallback', reason: 'image-module-not-in-tree'}, foreignModule: true, image: {compress: 'gzip', layout: 'lib', modules: ['dm_mod']}, name: 'an image holding a module the module tree lacks'},
]

function buildGuest(root: string, c: Case): string {
  const k = KERNEL!
  const tree = join(root, 'lib/modules', k)
  mkdirSync(tree, {recursive: true})
  for (const f of readdirSync(join('/lib/modules', k)).filter((f) => f.startsWith('modules.'))) copyFileSync(join('/lib/modules', k, f), join(tree, f))
  for (const rel of closure([...DRIVERS, ...c.image.modules])) {
    mkdirSync(dirname(join(tree, rel)), {recursive: true})
    copyFileSync(join('/lib/modules', k, rel), join(tree, rel))
  }
  mkdirSync(join(root, 'boot'), {recursive: true})
  mkdirSync(join(root, 'tmp'), {recursive: true})
  if (c.config !== undefined) writeFileSync(join(root, 'boot', `config-${k}`), `${c.config}\n`)
  for (const [path, content] of Object.entries(c.changed ?? {})) {
    if (content === null) continue
    mkdirSync(dirname(join(root, path)), {recursive: true})
    writeFileSync(join(root, path), content)
  }
  // The image: the given modules, their own modules.dep, extra files.
  const content = join(root, 'image-content')
  const modDir = join(content, c.image.layout, 'modules', k)
  mkdirSync(modDir, {recursive: true})
  const inImage = closure(c.image.modules)
  for (const rel of inImage) {
    mkdirSync(dirname(join(modDir, rel)), {recursive: true})
    copyFileSync(join(tree, rel), join(modDir, rel))
  }
  if (c.foreignModule) {
    mkdirSync(join(modDir, 'extra'), {recursive: true})
    writeFileSync(join(modDir, 'extra/vendor-only.ko'), 'not in the guest tree')
  }
  writeFileSync(join(modDir, 'modules.dep'), inImage.map((rel) => `${rel}:\n`).join(''))
  for (const [path, text] of Object.entries(c.image.files ?? {})) {
    mkdirSync(dirname(join(content, path)), {recursive: true})
    writeFileSync(join(content, path), text)
  }
  const image = join(root, 'boot', `initrd.img-${k}`)
  const compressor = c.image.compress === 'zstd' ? 'zstd -q -c' : c.image.compress === 'gzip-n9' ? 'gzip -n -9 -c' : 'gzip -c'
  if (c.image.compress === 'none-of-ours') writeFileSync(image, Buffer.from('BZh91AY&SY not an image we list'))
  else sh(`find . -mindepth 1 | sed 's|^\\./||' | LC_ALL=C sort | cpio -o -H newc --quiet | ${compressor} > '${image}'`, content)
  return image
}

/** Every member of an image we appended to: the original (by its own compressor) and ours (gzip, at its offset). */
function listMembers(image: string, originalSize: number, compress: ImageSpec['compress']): {original: string[]; appended: string[]} {
  const decompress = compress === 'zstd' ? 'zstd -qdc' : 'gzip -dc'
  const original = sh(`head -c ${originalSize} '${image}' | ${decompress} | cpio -t --quiet`).split('\n').filter(Boolean)
  const appended = sh(`tail -c +${originalSize + 1} '${image}' | gzip -dc | cpio -t --quiet`).split('\n').filter(Boolean)
  return {appended, original}
}

describe('fixer:initramfs append form (real cpio, gzip, zstd, depmod, modprobe, host kernel modules)', function () {
  this.timeout(120_000)

  it('the host has a kernel module tree to stand in for the guest\'s', () => {
    assert.ok(KERNEL, 'no /lib/modules/<version>/modules.dep on this host (libguestfs needs one)')
  })

  for (const c of CASES) {
    it(c.name, () => {
      const {cleanup, dir} = makeTempDir('h2k-append-')
      try {
        const root = join(dir, 'guest')
        const image = buildGuest(root, c)
        const before = readFileSync(image)
        const out = sh(`${APPEND_SCRIPT}\n${appendCall(root, KERNEL!, image, DRIVERS, Object.keys(c.changed ?? {}))}\n`)
        const outcome = parseAppendOutput(out)
        assert.deepEqual(readdirSync(join(root, 'tmp')), [], 'the scratch tree is removed')
        assert.deepEqual(readdirSync(join(root, 'boot')).filter((f) => f.includes('h2k')), [], 'no half-written image is left')
        if (c.expect.kind !== 'appended') {
          assert.deepEqual(outcome, c.expect, out)
          assert.ok(readFileSync(image).equals(before), 'the image is left as it was')
          return
        }
        assert.equal(outcome.kind, 'appended', out)
        if (outcome.kind !== 'appended') return
        const after = readFileSync(image)
        assert.equal(outcome.bytesBefore, before.length)
        assert.equal(outcome.bytesAfter, after.length)
        assert.ok(after.subarray(0, before.length).equals(before), 'the original archive is kept byte for byte')
        for (const name of ['virtio_blk', 'virtio_pci', 'virtio_net', 'virtio_scsi', 'virtio_console']) {
          if (closure([name]).length > 0) assert.ok(outcome.modules.includes(name), `${name} in ${outcome.modules.join(',')}`)
        }
        const {appended, original} = listMembers(image, before.length, c.image.compress)
        const prefix = `${c.image.layout}/modules/${KERNEL}`
        assert.ok(original.includes(`${prefix}/modules.dep`))
        for (const index of ['modules.dep', 'modules.dep.bin', 'modules.alias', 'modules.alias.bin']) assert.ok(appended.includes(`${prefix}/${index}`), `${index} in the appended member`)
        assert.ok(appended.some((f) => /\/virtio_blk\.ko/.test(f)))
        // Nothing the image already had is duplicated, and every path stays under the image's own layout.
        for (const f of appended.filter((f) => /\.ko/.test(f))) assert.ok(!original.includes(f), `${f} was already in the image`)
        for (const f of appended) assert.match(f, new RegExp(`^(${c.image.layout.split('/')[0]}|conf|etc)(/|$)`), f)

        // Unpacked in order, later files replacing earlier ones (as the kernel does), the image's modprobe
        // finds the new drivers and its own old ones, with every dependency present.
        const unpacked = join(dir, 'unpacked')
        mkdirSync(unpacked)
        const decompress = c.image.compress === 'zstd' ? 'zstd -qdc' : 'gzip -dc'
        sh(`head -c ${before.length} '${image}' | ${decompress} | cpio -id --quiet && tail -c +${before.length + 1} '${image}' | gzip -dc | cpio -idu --quiet`, unpacked)
        if (c.image.layout === 'usr/lib') sh('ln -s usr/lib lib', unpacked)
        for (const name of ['virtio_blk', ...c.image.modules]) {
          const deps = sh(`modprobe -d '${unpacked}' -S '${KERNEL}' --show-depends ${name}`)
          for (const m of deps.matchAll(/^insmod (\S+)/gm)) assert.ok(existsSync(m[1]!), `${name} needs ${m[1]}, present in the unpacked image`)
        }
        const alias = readFileSync(join(unpacked, 'lib/modules', KERNEL!, 'modules.alias'), 'utf8')
        assert.match(alias, /^alias virtio:d00000002v\* virtio_blk$/m, 'udev finds virtio_blk by its modalias')
        assert.match(alias, /^alias pci:v00001AF4d\*sv\*sd\*bc\*sc\*i\* virtio_pci$/m)
        for (const [path, content] of Object.entries(c.carried ?? {})) {
          assert.ok(appended.includes(path), `${path} carried in the member`)
          assert.equal(readFileSync(join(unpacked, path), 'utf8'), content)
        }
      } finally {
        cleanup()
      }
    })
  }
})

/** What the inspection's quick check (`initramfs_virtio`, the facts script's) says of an image. */
function virtioListed(image: string): string {
  return sh(`${INITRAMFS_VIRTIO_FN}\ninitramfs_virtio '${image}'\n`).trim()
}

describe('the virtio_blk check lists every member of an image (real gzip, zstd, cpio)', function () {
  this.timeout(120_000)
  const table: Array<{name: string; compress: 'gzip' | 'gzip-n9' | 'zstd'; modules: string[]; append: boolean; expect: string}> = [
    {append: false, compress: 'gzip-n9', expect: 'no', modules: ['dm_mod'], name: 'one gzip -n -9 archive without virtio_blk'},
    {append: true, compress: 'gzip-n9', expect: 'yes', modules: ['dm_mod'], name: 'a gzip -n -9 image with the appended member'},
    {append: false, compress: 'gzip', expect: 'no', modules: ['dm_mod'], name: 'one gzip archive without virtio_blk'},
    {append: false, compress: 'zstd', expect: 'yes', modules: ['virtio_blk'], name: 'one zstd archive with virtio_blk'},
    {append: true, compress: 'gzip', expect: 'yes', modules: ['dm_mod'], name: 'a gzip image with the appended member'},
    {append: true, compress: 'zstd', expect: 'yes', modules: ['dm_mod'], name: 'a zstd image with the appended gzip member'},
  ]
  for (const t of table) {
    it(`${t.name}: ${t.expect}`, () => {
      const {cleanup, dir} = makeTempDir('h2k-append-list-')
      try {
        const root = join(dir, 'guest')
        const image = buildGuest(root, {config: 'CONFIG_RD_GZIP=y', expect: {kind: 'appended'}, image: {compress: t.compress, layout: 'usr/lib', modules: t.modules}, name: t.name})
        if (t.append) {
          assert.equal(virtioListed(image), 'no', 'before the append')
          assert.equal(parseAppendOutput(sh(`${APPEND_SCRIPT}\n${appendCall(root, KERNEL!, image, DRIVERS)}\n`)).kind, 'appended')
        }
        assert.equal(virtioListed(image), t.expect)
      } finally {
        cleanup()
      }
    })
  }
})

describe('parseAppendOutput', () => {
  const cases: Array<[string, ReturnType<typeof parseAppendOutput>]> = [
    ['append ok 100 250 virtio,virtio_blk', {bytesAfter: 250, bytesBefore: 100, kind: 'appended', modules: ['virtio', 'virtio_blk']}],
    ['noise\nappend none\n', {kind: 'none'}],
    ['append fallback depmod-failed', {kind: 'fallback', reason: 'depmod-failed'}],
    ['append fallback $(reboot)', {kind: 'fallback', reason: 'unexpected-output'}],
    ['append ok x y z', {kind: 'fallback', reason: 'unexpected-output'}],
    ['', {kind: 'fallback', reason: 'unexpected-output'}],
  ]
  for (const [text, expected] of cases) it(JSON.stringify(text), () => assert.deepEqual(parseAppendOutput(text), expected))
})
