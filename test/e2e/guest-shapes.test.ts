import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {bootCheck} from '../../src/boot/boot-check.js'
import {LOGIN_PROMPT} from '../../src/boot/boot-verdict.js'
import {runCli, sha256} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {guestPath} from '../helpers/test-guests.js'

/**
 * Issue #12 part 1: every common Linux guest shape boots on KVM virtio after conversion, and reaches its
 * network. One entry per test guest variant (test/e2e/guest/variants/<name>.sh, built and cached by the
 * test-guests fixture before any suite). Per variant: a monolithicSparse VMDK of the guest is converted with
 * `convert --verify-boot` (the converter picks the firmware from its inspection); the report must state the
 * shape's facts and changes and a passed boot; the source is untouched; then the output is booted again here
 * with a virtio-net NIC on qemu user networking (restrict=on, a KVM MAC, not the VMware one the guest pinned)
 * and its console must show the guest's address through /etc/issue (`\4`) before the login prompt.
 */

/** What one test guest is and what converting it must do. */
interface GuestShape {
  /** The variant: test/e2e/guest/variants/<name>.sh. */
  name: string
  /** In words, for the test titles (the per-variant summary). */
  shape: string
  firmware: 'bios' | 'efi'
  hostname: string
  inspection: {
    /** The root libguestfs reports; a RegExp where the appliance's disk letter is not the guest's to decide. */
    root: string | RegExp
    rootFsType: string
    lvm: boolean
    initramfsTool: string
    bootloader: string
  }
  /** Paths that must be in the report's changes, each `after` matching every pattern (and none of `afterNot`). */
  changed: Record<string, {after?: RegExp[]; afterNot?: RegExp[]}>
  /** Paths that must NOT be changed (e.g. the ESP's grub.cfg stub, which only chains to /boot). */
  unchanged: string[]
  network: {mode: 'static' | 'dhcp'; address: string}
}

const SHAPES: GuestShape[] = [
  {
    changed: {
      '/boot/grub/grub.cfg': {after: [/root=\/dev\/mapper\/h2kvg-root/, /resume=UUID=/], afterNot: [/=\/dev\/sd/]},
      '/etc/default/grub': {after: [/resume=UUID=/], afterNot: [/\/dev\/sd/]},
      '/etc/fstab': {
        after: [/^\/dev\/mapper\/h2kvg-root\s+\/\s+xfs/m, /^UUID=[0-9A-F]{4}-[0-9A-F]{4}\s+\/boot\/efi\s+vfat/m, /^UUID=[0-9a-f-]{36}\s+\/boot\s+ext4/m, /^UUID=[0-9a-f-]{36}\s+\/home\s+ext4/m, /^UUID=[0-9a-f-]{36}\s+none\s+swap/m],
        afterNot: [/^\/dev\/sd/m],
      },
      '/etc/initramfs-tools/conf.d/resume': {after: [/^RESUME=UUID=[0-9a-f-]{36}$/m]},
      '/etc/initramfs-tools/modules': {after: [/^virtio_blk$/m]},
    },
    firmware: 'efi',
    hostname: 'h2k-uefi',
    inspection: {bootloader: 'grub2', initramfsTool: 'initramfs-tools', lvm: true, root: '/dev/h2kvg/root', rootFsType: 'xfs'},
    name: 'debian12-uefi-lvm-xfs',
    network: {address: '10.0.2.15', mode: 'static'},
    shape: 'Debian 12, UEFI (shim + signed grub, ESP stub), GPT, ext4 /boot, XFS root on LVM, swap + resume=, /home, ifupdown ens192 static',
    unchanged: ['/boot/efi/EFI/debian/grub.cfg'],
  },
  {
    changed: {
      // grub-mkconfig adds rootflags=subvol=@ itself once UUIDs are allowed; it must survive next to root=UUID=.
      '/boot/grub/grub.cfg': {after: [/root=UUID=[0-9a-f-]{36} ro rootflags=subvol=@ /, /resume=UUID=[0-9a-f-]{36}/], afterNot: [/=\/dev\/sd/]},
      '/etc/default/grub': {after: [/resume=UUID=[0-9a-f-]{36}/], afterNot: [/\/dev\/sd/]},
      // the dracut drop-in: the guest's own dracut (hostonly="yes") rebuilt the image with it, virtio_blk verified inside
      // (and, the guest having swap, dracut's resume module, which a host-only build in the appliance leaves out)
      '/etc/dracut.conf.d/60-hyper2kvm-virtio.conf': {after: [/^add_drivers\+=" [^"]*\bvirtio_blk\b/m, /^add_dracutmodules\+=" resume "$/m]},
      '/etc/fstab': {
        after: [
          /^UUID=([0-9a-f-]{36})\s+\/\s+btrfs\s+defaults,subvol=@\s.*\n(?:.*\n)*UUID=\1\s+\/home\s+btrfs\s+defaults,subvol=@home\s/m,
          /^UUID=[0-9a-f-]{36}\s+\/boot\s+ext4/m,
          /^UUID=[0-9a-f-]{36}\s+none\s+swap/m,
        ],
        afterNot: [/^\/dev\/sd/m],
      },
    },
    firmware: 'bios',
    hostname: 'h2k-dracut',
    // libguestfs names a root mounted with subvol= by its mountable, btrfsvol:<device>/<subvolume>, and the device
    // by the appliance's disk order (sda on this branch, sdb once main added another drive before it)
    inspection: {bootloader: 'grub2', initramfsTool: 'dracut', lvm: false, root: /^btrfsvol:\/dev\/sd[a-z]2\/@$/, rootFsType: 'btrfs'},
    name: 'debian12-bios-dracut-btrfs',
    network: {address: '10.0.2.15', mode: 'dhcp'},
    shape: 'Debian 12, BIOS, MBR, ext4 /boot, btrfs root on subvolumes @ and @home (rootflags=subvol=@), swap + resume=, dracut hostonly, systemd-networkd ens160 DHCP pinned by a .link on the VMware MAC',
    unchanged: [],
  },
]

/** After the first login prompt, how long the address may take to appear (agetty reprints /etc/issue when it changes). */
const ADDRESS_GRACE_SECONDS = 60

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

for (const shape of SHAPES) {
  describe(`e2e guest shape ${shape.name} (${shape.firmware}): ${shape.shape}`, function () {
    this.timeout(40 * 60_000)
    const guest = guestPath(shape.name)
    let dir: string
    let cleanup: () => void
    let sourceSum: string
    let vmdk: string
    let output: {path: string; format: string} | undefined

    before(function () {
      this.timeout(10 * 60_000)
      sourceSum = sha256(guest)
      ;({cleanup, dir} = makeTempDir('h2k-e2e-shape-'))
      vmdk = join(dir, `${shape.name}.vmdk`)
      execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=monolithicSparse', guest, vmdk])
    })
    after(() => cleanup?.())

    it(`${shape.name}: VMDK → convert --verify-boot: the report states the shape, its changes and a passed ${shape.firmware} boot on virtio`, async () => {
      const vmdkSum = sha256(vmdk)
      const out = join(dir, 'out')
      const started = Date.now()
      const result = await runCli(['convert', vmdk, '--output-dir', out, '--accel', 'tcg', '--verify-boot', '--boot-timeout', '600', '--emit', 'libvirt', '--json'])
      console.log(`      [${shape.name}] convert --verify-boot took ${Math.round((Date.now() - started) / 1000)} s`)
      assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`)
      const json = result.json
      assert.equal(json.status, 'succeeded')

      const inspection = json.inspection
      assert.equal(inspection.os, 'linux')
      assert.equal(inspection.distro, 'debian')
      assert.equal(inspection.hostname, shape.hostname)
      assert.equal(inspection.firmware, shape.firmware)
      assert.equal(inspection.bootloader, shape.inspection.bootloader)
      assert.equal(inspection.initramfs_tool, shape.inspection.initramfsTool)
      assert.equal(inspection.lvm, shape.inspection.lvm)
      if (shape.inspection.root instanceof RegExp) assert.match(inspection.root, shape.inspection.root)
      else assert.equal(inspection.root, shape.inspection.root)
      const rootEntry = inspection.fstab.find((entry: {mountpoint: string}) => entry.mountpoint === '/')
      assert.equal(rootEntry?.fstype, shape.inspection.rootFsType, JSON.stringify(inspection.fstab))

      const changes = new Map<string, {after: string | null; before: string | null}>(json.changes.map((c: {path: string}) => [c.path, c]))
      for (const [path, expect] of Object.entries(shape.changed)) {
        const change = changes.get(path)
        assert.ok(change, `${path} changed (changes: ${[...changes.keys()].join(', ')})`)
        for (const pattern of expect.after ?? []) assert.match(change.after ?? '', pattern, `${path} after the fix`)
        for (const pattern of expect.afterNot ?? []) assert.doesNotMatch(change.after ?? '', pattern, `${path} after the fix`)
      }
      for (const path of shape.unchanged) assert.ok(!changes.has(path), `${path} must be left as it is`)
      // The boot below is the proof of the append form (--initramfs-mode auto): a silent fallback to the
      // guest's tool must not pass as that proof.
      const images = json.changes.filter((c: {stage: string; before?: string | null; after?: string | null}) => c.stage === 'fixer:initramfs' && c.before === null && c.after === null) as Array<{path: string; reason: string}>
      assert.ok(images.length > 0, 'an initramfs image changed')
      for (const image of images) assert.match(image.reason, /\(method: append\).*virtio_blk verified inside/, image.path)
      assert.ok(!json.warnings.some((w: {code: string}) => w.code === 'INITRAMFS_APPEND_FELL_BACK'), JSON.stringify(json.warnings))

      const boot = json.verification.boot
      assert.equal(boot.passed, true, JSON.stringify(boot, null, 1))
      assert.equal(boot.reason, 'login-prompt')
      assert.match(boot.matched_line, new RegExp(`${escapeRegExp(shape.hostname)} login:`))
      assert.equal(boot.firmware, shape.firmware)
      assert.equal(boot.machine, 'q35', 'the boot proof ran on the hardware the libvirt domain describes')

      // The VM the user will define: it validates against libvirt's schema and states the same machine and firmware.
      const domain = readFileSync(json.libvirt_xml, 'utf8')
      const validation = spawnSync('virt-xml-validate', [json.libvirt_xml, 'domain'], {encoding: 'utf8'})
      assert.equal(validation.status, 0, `${validation.stdout}${validation.stderr}`)
      assert.match(domain, /<type [^>]*machine="[^"]*q35[^"]*"/)
      assert.equal(/<loader\b/.test(domain), shape.firmware === 'efi', 'an OVMF loader exactly when the guest is UEFI')
      assert.match(domain, /<model type="virtio"\/>/)

      const report = JSON.parse(readFileSync(json.report, 'utf8'))
      assert.deepEqual(report.changes, json.changes)
      assert.equal(sha256(vmdk), vmdkSum, 'the VMDK was not written')
      assert.equal(sha256(guest), sourceSum, 'the cached guest was not written')
      output = {format: json.outputs[0].format ?? 'qcow2', path: json.outputs[0].path}
    })

    it(`${shape.name}: the output boots on virtio with a virtio-net NIC (KVM MAC) and shows its ${shape.network.mode} address ${shape.network.address} before the login prompt`, async () => {
      assert.ok(output, 'the conversion produced an output')
      const serialLog = join(dir, 'network-boot.serial.log')
      const address = new RegExp(`^IPv4: ${escapeRegExp(shape.network.address)}\\b`)
      // Stop early once a login prompt has been shown for a while without the address: that is the answer.
      const controller = new AbortController()
      let promptAt: number | undefined
      const started = Date.now()
      let result: Awaited<ReturnType<typeof bootCheck>> | undefined
      try {
        result = await bootCheck({
          accel: 'tcg',
          disks: [{format: output.format, path: output.path}],
          firmware: shape.firmware,
          onProgress: (seconds, lastLine) => {
            if (promptAt === undefined && lastLine !== undefined && LOGIN_PROMPT.test(lastLine)) promptAt = seconds
            if (promptAt !== undefined && seconds - promptAt > ADDRESS_GRACE_SECONDS) controller.abort()
          },
          passPattern: address,
          serialLog,
          signal: controller.signal,
          timeoutSeconds: 600,
        })
      } catch (error) {
        if ((error as {code?: string}).code !== 'H2K_CANCELLED') throw error
      }
      console.log(`      [${shape.name}] network boot: ${result ? result.reason : 'login prompt without the address'} after ${Math.round((Date.now() - started) / 1000)} s`)
      const console_ = readFileSync(serialLog, 'utf8').split(/\r?\n/)
      const issue = console_.filter((line) => line.startsWith('IPv4:') || LOGIN_PROMPT.test(line.replace(/^\s+/, '')) || /\b(ens\d+|enp\d+s\d+|eth\d+)\b/.test(line))
      assert.ok(result?.passed, `no ${shape.network.address} on the console before the login prompt; console lines about it:\n${issue.slice(-20).join('\n')}`)
      assert.equal(result.reason, 'pattern')
    })
  })
}
