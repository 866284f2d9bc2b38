import assert from 'node:assert/strict'
import {execFileSync, spawn} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {bootCheck} from '../../src/boot/boot-check.js'
import {today, until} from '../helpers/daemon-process.js'
import {ovfText} from '../helpers/ovf-fixtures.js'
import {CLI, leftovers, runCli, sha256} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {GUEST_CACHE, guestPath} from '../helpers/test-guests.js'

/**
 * The product's promise, end to end: a Debian 12 guest installed the VMware way (fstab and kernel command
 * line on /dev/sda1, an initramfs without virtio) does not boot on virtio-blk; after `hyper2kvm convert
 * --verify-boot` from each input format it does, proved by the product's own boot test, with every change
 * in the report and the source untouched. The guest is built by test/e2e/guest/build-guest.sh (through the
 * test-guests fixture, before any suite) and cached in $H2K_E2E_CACHE; a cache hit costs nothing.
 */
describe('e2e: a VMware-style Linux guest boots on KVM virtio after conversion', function () {
  this.timeout(20 * 60_000)
  const cache = GUEST_CACHE
  const guest = guestPath('debian12-vmware')
  let dir: string
  let cleanup: () => void
  let sourceSum: string

  before(function () {
    this.timeout(20 * 60_000)
    sourceSum = sha256(guest)
    ;({cleanup, dir} = makeTempDir('h2k-e2e-'))
  })
  after(() => cleanup?.())

  it('the source guest does not boot on virtio (it stops in the initramfs)', async () => {
    const result = await bootCheck({accel: 'tcg', disks: [{format: 'raw', path: guest}], firmware: 'bios', serialLog: join(dir, 'source-virtio.log'), timeoutSeconds: 240})
    assert.equal(result.passed, false)
    assert.equal(result.reason, 'initramfs-shell', result.serialTail.join('\n'))
    assert.ok(result.serialTail.some((line) => line.includes('/dev/sda1 does not exist')), result.serialTail.join('\n'))
  })

  it('inspect reports the guest and its virtio risks without changing anything', async () => {
    const result = await runCli(['inspect', guest, '--accel', 'tcg', '--json'])
    assert.equal(result.code, 0, result.stderr)
    const inspection = result.json.inspection
    assert.equal(inspection.os, 'linux')
    assert.equal(inspection.distro, 'debian')
    assert.equal(inspection.hostname, 'h2k-guest')
    assert.equal(inspection.root, '/dev/sda1')
    assert.equal(inspection.firmware, 'bios')
    assert.equal(inspection.bootloader, 'grub2')
    assert.equal(inspection.initramfs_tool, 'initramfs-tools')
    assert.equal(inspection.kernels.length, 1)
    assert.equal(inspection.kernels[0].has_virtio, true)
    assert.equal(inspection.kernels[0].virtio_in_initramfs, false)
    const codes = inspection.risks.map((r: {code: string}) => r.code)
    for (const code of ['ROOT_ON_UNSTABLE_DEVICE', 'KERNEL_ROOT_UNSTABLE', 'NO_VIRTIO_IN_INITRAMFS']) assert.ok(codes.includes(code), `${code} in ${codes}`)
    assert.equal(result.json.outputs.length, 0)
    assert.equal(sha256(guest), sourceSum)
  })

  // The raw guest itself is converted (and boot-proved) by the daemon test below; each boot costs minutes under TCG.
  const inputs: Record<string, (d: string) => string> = {
    'VMDK (monolithicSparse)': (d) => {
      execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=monolithicSparse', guest, join(d, 'guest.vmdk')])
      return join(d, 'guest.vmdk')
    },
    'OVA with a streamOptimized VMDK': (d) => {
      execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', guest, join(d, 'guest-disk1.vmdk')])
      writeFileSync(join(d, 'guest.ovf'), ovfText('guest', [{href: 'guest-disk1.vmdk', id: 'vmdisk1'}]).replace('vmw:value="efi"', 'vmw:value="bios"'))
      execFileSync('tar', ['-cf', join(d, 'guest.ova'), 'guest.ovf', 'guest-disk1.vmdk'], {cwd: d})
      rmSync(join(d, 'guest-disk1.vmdk'))
      return join(d, 'guest.ova')
    },
    VHDX: (d) => {
      execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vhdx', guest, join(d, 'guest.vhdx')])
      return join(d, 'guest.vhdx')
    },
  }

  for (const [name, make] of Object.entries(inputs)) {
    it(`${name}: converted with fixes, boots to a login prompt on virtio`, async () => {
      const work = join(dir, name.replace(/\W+/g, '-'))
      mkdirSync(work)
      const input = make(work)
      const inputSum = sha256(input)
      const out = join(work, 'out')
      const result = await runCli(['convert', input, '--output-dir', out, '--accel', 'tcg', '--verify-boot', '--boot-timeout', '300', '--json'])
      assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`)
      const json = result.json
      assert.equal(json.status, 'succeeded')
      assert.equal(json.verification.boot.passed, true)
      assert.equal(json.verification.boot.reason, 'login-prompt')
      assert.match(json.verification.boot.matched_line, /h2k-guest login:/)
      const changed = new Map<string, {before: string | null; after: string | null; stage: string}>(json.changes.map((c: {path: string}) => [c.path, c]))
      assert.match(changed.get('/etc/fstab')!.after!, /^UUID=[0-9a-f-]+\s+\/\s+ext4/m)
      assert.equal(changed.get('/etc/fstab')!.stage, 'fixer:fstab')
      assert.match(changed.get('/boot/grub/grub.cfg')!.before!, /root=\/dev\/sda1/)
      assert.doesNotMatch(changed.get('/boot/grub/grub.cfg')!.after!, /root=\/dev\/sd/)
      assert.match(changed.get('/boot/grub/grub.cfg')!.after!, /root=UUID=/)
      assert.match(changed.get('/etc/initramfs-tools/modules')!.after!, /^virtio_blk$/m)
      const image = [...changed.entries()].find(([p]) => p.startsWith('/boot/initrd.img-'))
      assert.ok(image, 'the initramfs changed')
      // The boot proves the append form (--initramfs-mode auto), not a silent fallback to update-initramfs.
      assert.match((image[1] as {reason?: string}).reason ?? '', /\(method: append\).*virtio_blk verified inside/)
      assert.ok(!json.warnings.some((w: {code: string}) => w.code === 'INITRAMFS_APPEND_FELL_BACK'), JSON.stringify(json.warnings))
      const report = JSON.parse(readFileSync(json.report, 'utf8'))
      assert.deepEqual(report.changes, json.changes)
      assert.deepEqual(report.verification.boot.serial_excerpt, json.verification.boot.serial_excerpt)
      assert.deepEqual(leftovers(out).sort(), [json.outputs[0].path.split('/').pop(), json.report.split('/').pop()].sort())
      assert.equal(sha256(input), inputSum, 'the input was not written')
      rmSync(work, {force: true, recursive: true})
    })
  }

  it('a disk with a filesystem but no operating system converts without fixes, with a warning', async () => {
    const disk = join(dir, 'data.qcow2')
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M'])
    execFileSync('guestfish', ['--format=qcow2', '-a', disk, 'run', ':', 'part-disk', '/dev/sda', 'mbr', ':', 'mkfs', 'ext4', '/dev/sda1', ':', 'mount', '/dev/sda1', '/', ':', 'write', '/hello.txt', 'data only'], {
      env: {...process.env, LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg'},
    })
    const before = sha256(disk)
    const result = await runCli(['convert', disk, '--output-dir', join(dir, 'out-data'), '--accel', 'tcg', '--json'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.json.inspection.os, 'unknown')
    assert.ok(result.json.warnings.some((w: {code: string}) => w.code === 'NO_OS_FOUND'))
    assert.deepEqual(result.json.changes, [])
    const fixers = result.json.stages.filter((s: {phase: string}) => s.phase === 'fix') as Array<{id: string; status: string}>
    assert.deepEqual(fixers.map((s) => s.id).sort(), ['fixer:fstab', 'fixer:grub', 'fixer:initramfs', 'fixer:network', 'fixer:vmware-tools'])
    assert.ok(fixers.every((s) => s.status === 'skipped'), JSON.stringify(fixers))
    const content = execFileSync('guestfish', ['--ro', '--format=qcow2', '-a', result.json.outputs[0].path, '-m', '/dev/sda1', 'cat', '/hello.txt'], {
      encoding: 'utf8',
      env: {...process.env, LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg'},
    })
    assert.equal(content.trimEnd(), 'data only') // guestfish cat ends what it prints with a newline
    assert.equal(sha256(disk), before)
  })

  it('the daemon, run as an unprivileged user, converts the guest named by a workflow job file and proves it boots', async () => {
    // What examples/systemd runs: no root. setpriv execs node directly as the user (no shell, no fork).
    const user = 'h2k-e2e'
    try {
      execFileSync('id', [user], {stdio: 'ignore'})
    } catch {
      execFileSync('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', user])
    }
    const uid = Number(execFileSync('id', ['-u', user], {encoding: 'utf8'}))
    const gid = Number(execFileSync('id', ['-g', user], {encoding: 'utf8'}))
    const base = join(dir, 'daemon')
    const root = join(base, 'workflow')
    const out = join(base, 'out')
    mkdirSync(join(root, 'to_be_processed'), {recursive: true})
    chmodSync(dir, 0o755)
    // The job file names the cached guest by its absolute path: allowed_input_dirs lets it.
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, `command: daemon\nworkflow_mode: true\nworkflow_dir: ${root}\noutput_dir: ${out}\nallowed_input_dirs: [${cache}]\n`)
    execFileSync('chown', ['-R', `${uid}:${gid}`, base])
    const child = spawn('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', process.execPath, CLI, 'daemon', '--config', config, '--stability-interval', '200'], {
      env: {...process.env, HOME: base, NO_COLOR: '1'},
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let log = ''
    child.stderr!.on('data', (chunk) => (log += chunk))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    try {
      await until('daemon:start', () => log.includes('daemon:start'), 30_000)
      assert.equal(statSync(join(out, '.daemon', 'control.sock')).uid, uid, 'the daemon runs as the unprivileged user')
      writeFileSync(join(root, 'to_be_processed', 'web01.yaml'), `name: web01\ninput: ${guest}\nverify_boot: true\n`)
      const processed = join(root, 'processed', today())
      await until('the job file settled', () => existsSync(join(processed, 'web01.yaml.meta.json')) || existsSync(join(root, 'failed', today(), 'web01.yaml.error.json')), 15 * 60_000, undefined, 1000)
      assert.ok(existsSync(join(processed, 'web01.yaml.meta.json')), log)
      const meta = JSON.parse(readFileSync(join(processed, 'web01.yaml.meta.json'), 'utf8'))
      assert.equal(meta.status, 'success')
      const report = JSON.parse(readFileSync(meta.jobs[0].report, 'utf8'))
      assert.equal(report.verification.boot.passed, true)
      assert.match(report.verification.boot.matched_line, /h2k-guest login:/)
      assert.ok(report.changes.some((c: {path: string}) => c.path === '/etc/fstab'))
      assert.equal(statSync(report.outputs[0].path).uid, uid, 'outputs belong to the daemon user')
      assert.equal((await runCli(['ctl', 'drain', '--output-dir', out])).code, 0)
      assert.equal(await exited, 0)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
    assert.equal(sha256(guest), sourceSum, 'a job file input outside the drop directory stays where it is, untouched')
  })

  it('left the cached source guest byte-identical', () => {
    assert.equal(sha256(guest), sourceSum)
  })
})
