import assert from 'node:assert/strict'

import {H2KError, type Inspection} from '@hyper2kvm/plugin-api'

import {addNetwork, inspectNetwork} from '../../../plugins/linux/src/inspect-network.js'
import {MAX_NETWORK_FILE_BYTES, MAX_NETWORK_TOTAL_BYTES, readNetworkFiles} from '../../../plugins/linux/src/network-files.js'
import {networkFixer} from '../../../plugins/linux/src/network-fixer.js'
import {VIRTIO_NIC_LINK_PATH, virtioNicLinkFor} from '../../../plugins/linux/src/transforms/rewrite-networkd.js'
import registerLinux from '../../../plugins/linux/src/register.js'
import {StageRegistry} from '../../../src/stages/stage-registry.js'
import {MemoryGuest, memoryJob} from '../../helpers/memory-guest.js'
import type {NetworkInterface, StageContext} from '@hyper2kvm/plugin-api'

const MAC = '00:50:56:8a:1b:2c'
const UDEV_NAMING = '/usr/lib/udev/rules.d/80-net-setup-link.rules'

/** The NICs the source (an OVF) lists, as a loader puts them in ctx.source.vm. */
function withSourceNics(ctx: StageContext, nics: NetworkInterface[]): StageContext {
  Object.assign(ctx.source!, {vm: {nics}})
  return ctx
}

/** netplan ens192 pinned by MAC (match macaddress + set-name), as cloud-init writes it. */
const NETPLAN_MAC_PIN = `network:\n  ethernets:\n    ens192:\n      match:\n        macaddress: ${MAC}\n      set-name: ens192\n      dhcp4: true\n`

/** The e2e guest debian12-uefi-lvm-xfs: ifupdown ens192 static, its MAC pinned in 70-persistent-net.rules. */
const IFUPDOWN_STATIC = `source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

allow-hotplug ens192
iface ens192 inet static
    address 10.0.2.15/24
    gateway 10.0.2.2
`
const PERSISTENT_NET = `# PCI device 0x15ad:0x07b0 (vmxnet3)
SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="${MAC}", ATTR{type}=="1", KERNEL=="eth*", NAME="ens192"
`

/** The e2e guest debian12-bios-dracut-btrfs: networkd ens160 DHCP by name, the name pinned by MAC in a .link. */
const NETWORKD_DHCP = `[Match]
Name=ens160

[Network]
DHCP=yes
`
const LINK_BY_MAC = `[Match]
MACAddress=${MAC}

[Link]
Name=ens160
`

function ifupdownGuest(): MemoryGuest {
  return new MemoryGuest()
    .plantFile(UDEV_NAMING, '# systemd naming\n')
    .plantFile('/etc/network/interfaces', IFUPDOWN_STATIC)
    .plantFile('/etc/udev/rules.d/70-persistent-net.rules', PERSISTENT_NET)
}

function networkdGuest(): MemoryGuest {
  return new MemoryGuest()
    .plantFile(UDEV_NAMING, '# systemd naming\n')
    .plantFile('/etc/systemd/network/10-ens160.network', NETWORKD_DHCP)
    .plantFile('/etc/systemd/network/10-ens160.link', LINK_BY_MAC)
}

describe('fixer:network on an in-memory guest', () => {
  it('runs after fstab and before initramfs, whose rebuild then carries the network renames udev copies into it', async () => {
    const registry = StageRegistry.fromContributions([{plugin: {name: '@hyper2kvm/plugin-linux', version: '0.1.0'}, result: await registerLinux()}])
    assert.deepEqual(registry.ofKind('fixer').map((s) => s.id), ['fixer:fstab', 'fixer:grub', 'fixer:network', 'fixer:vmware-tools', 'fixer:initramfs'])
  })

  it('ifupdown ens192 static + 70-persistent-net.rules: rebound to enp1s0, still static, stale rules removed, both in the report', async () => {
    const guest = ifupdownGuest()
    const {changes, ctx, warnings} = memoryJob(guest)
    assert.equal(await networkFixer.applies!(ctx), true)
    await networkFixer.run(ctx)
    const interfaces = guest.file('/etc/network/interfaces')!
    assert.match(interfaces, /^allow-hotplug enp1s0$/m)
    assert.match(interfaces, /^iface enp1s0 inet static\n {4}address 10\.0\.2\.15\/24\n {4}gateway 10\.0\.2\.2$/m)
    assert.doesNotMatch(interfaces, /ens192/)
    assert.equal(guest.nodes.has('/etc/udev/rules.d/70-persistent-net.rules'), false)
    assert.deepEqual(changes.map((c) => [c.path, c.stage, c.before === null, c.after === null]), [
      ['/etc/network/interfaces', 'fixer:network', false, false],
      ['/etc/udev/rules.d/70-persistent-net.rules', 'fixer:network', false, true],
      [VIRTIO_NIC_LINK_PATH, 'fixer:network', true, false],
    ])
    assert.equal(changes[1]!.before, PERSISTENT_NET)
    assert.match(changes[0]!.reason!, /ens192 → enp1s0/)
    // One NIC: whatever slot the hypervisor gives it, the virtio NIC is named what the config now binds.
    assert.equal(guest.file(VIRTIO_NIC_LINK_PATH), virtioNicLinkFor('enp1s0'))
    assert.match(virtioNicLinkFor('enp1s0'), /^\[Match\]\nDriver=virtio_net\n\n\[Link\]\nName=enp1s0$/m)
    assert.deepEqual(warnings, [])
  })

  it('networkd ens160 DHCP + a .link pinning ens160 by MAC: [Match] Name=enp1s0, the .link removed', async () => {
    const guest = networkdGuest()
    const {changes, ctx} = memoryJob(guest)
    await networkFixer.run(ctx)
    assert.equal(guest.file('/etc/systemd/network/10-ens160.network'), NETWORKD_DHCP.replace('Name=ens160', 'Name=enp1s0'))
    assert.equal(guest.nodes.has('/etc/systemd/network/10-ens160.link'), false)
    assert.deepEqual(changes.map((c) => c.path).sort(), [VIRTIO_NIC_LINK_PATH, '/etc/systemd/network/10-ens160.link', '/etc/systemd/network/10-ens160.network'].sort())
    assert.equal(guest.file(VIRTIO_NIC_LINK_PATH), virtioNicLinkFor('enp1s0'))
  })

  it('no name pin where udev reads no .link files, or a file is already where it would go', async () => {
    const old = new MemoryGuest().plantFile('/lib/udev/rules.d/80-net-name-slot.rules', '#\n').plantFile('/etc/network/interfaces', IFUPDOWN_STATIC)
    const first = memoryJob(old)
    await networkFixer.run(first.ctx)
    assert.match(old.file('/etc/network/interfaces')!, /iface enp1s0 inet static/)
    assert.equal(old.nodes.has(VIRTIO_NIC_LINK_PATH), false)
    const taken = ifupdownGuest().plantSymlink(VIRTIO_NIC_LINK_PATH, '/dev/null')
    const second = memoryJob(taken)
    await networkFixer.run(second.ctx)
    assert.deepEqual(taken.nodes.get(VIRTIO_NIC_LINK_PATH), {kind: 'symlink', target: '/dev/null'})
    // The symlink is refused as a config to read, and not written through.
    assert.deepEqual(second.warnings.map((w) => w.message.includes('already exists')), [false, true])
  })

  it('keep_macs: the persistent-net rule still names the NIC ens192, so nothing changes', async () => {
    const guest = ifupdownGuest()
    const {changes, ctx} = memoryJob(guest, {keepMacs: true})
    await networkFixer.run(withSourceNics(ctx, [{mac: MAC, name: 'Network adapter 1'}]))
    assert.equal(guest.file('/etc/network/interfaces'), IFUPDOWN_STATIC)
    assert.equal(guest.file('/etc/udev/rules.d/70-persistent-net.rules'), PERSISTENT_NET)
    assert.deepEqual(changes, [])
  })

  it('keep_macs with a source that states no MAC (a VMDK, an OVF without MACs) is not trusted: the MAC pin is rebound by name, with a warning', async () => {
    for (const nics of [undefined, [{name: 'Network adapter 1'}], [{mac: '01:00:5e:00:00:01'}]]) {
      const guest = new MemoryGuest().plantFile(UDEV_NAMING, '#\n').plantFile('/etc/netplan/50-cloud-init.yaml', NETPLAN_MAC_PIN)
      const {ctx, warnings} = memoryJob(guest, {keepMacs: true})
      if (nics) withSourceNics(ctx, nics)
      await networkFixer.run(ctx)
      const netplan = guest.file('/etc/netplan/50-cloud-init.yaml')!
      assert.match(netplan, /^ {8}name: enp1s0$/m, JSON.stringify(nics))
      assert.match(netplan, /^ {6}# \[hyper2kvm\] set-name: ens192$/m)
      assert.deepEqual(warnings.map((w) => w.code), ['MAC_BINDINGS_REBOUND'])
    }
    const kept = new MemoryGuest().plantFile(UDEV_NAMING, '#\n').plantFile('/etc/netplan/50-cloud-init.yaml', NETPLAN_MAC_PIN)
    const {ctx, warnings} = memoryJob(kept, {keepMacs: true})
    await networkFixer.run(withSourceNics(ctx, [{mac: MAC.toUpperCase()}]))
    assert.equal(kept.file('/etc/netplan/50-cloud-init.yaml'), NETPLAN_MAC_PIN, 'a source MAC for every NIC: the pin still matches')
    assert.deepEqual(warnings, [])
  })

  it('a source VM with several NICs gets no single-NIC .link pin, and a configured count that differs is told (NIC_ORDER)', async () => {
    const guest = new MemoryGuest().plantFile(UDEV_NAMING, '#\n').plantFile('/etc/network/interfaces', 'auto ens224\niface ens224 inet dhcp\n')
    const {ctx, warnings} = memoryJob(guest)
    await networkFixer.run(withSourceNics(ctx, [{name: 'Network adapter 1'}, {name: 'Network adapter 2'}]))
    assert.equal(guest.nodes.has(VIRTIO_NIC_LINK_PATH), false, 'a driver match would name both virtio NICs')
    assert.deepEqual(warnings.map((w) => w.code), ['NIC_ORDER'])
    assert.match(warnings[0]!.message, /source VM has 2 NIC\(s\) but the guest configures 1/)
    // One NIC in the source, or none stated (a VMDK): one NIC assumed, the pin stays.
    for (const nics of [[{name: 'Network adapter 1'}], undefined]) {
      const single = new MemoryGuest().plantFile(UDEV_NAMING, '#\n').plantFile('/etc/network/interfaces', 'auto ens224\niface ens224 inet dhcp\n')
      const job = memoryJob(single)
      if (nics) withSourceNics(job.ctx, nics)
      await networkFixer.run(job.ctx)
      assert.equal(single.file(VIRTIO_NIC_LINK_PATH), virtioNicLinkFor('enp1s0'))
      assert.deepEqual(job.warnings, [])
    }
  })

  it('numbers NICs against the source\'s NIC list by MAC: the second OVF NIC\'s config gets the second slot\'s name', async () => {
    const second = '00:50:56:8a:00:02'
    const guest = new MemoryGuest()
      .plantFile(UDEV_NAMING, '#\n')
      .plantFile('/etc/network/interfaces', 'auto ens224\niface ens224 inet dhcp\n')
      .plantFile('/etc/udev/rules.d/70-persistent-net.rules', `SUBSYSTEM=="net", ATTR{address}=="${second}", NAME="ens224"\n`)
    const {ctx, warnings} = memoryJob(guest)
    await networkFixer.run(withSourceNics(ctx, [{mac: '00:50:56:8a:00:01'}, {mac: second.toUpperCase()}]))
    assert.equal(guest.file('/etc/network/interfaces'), 'auto enp2s0\niface enp2s0 inet dhcp\n')
    assert.equal(guest.nodes.has(VIRTIO_NIC_LINK_PATH), false)
    assert.deepEqual(warnings.map((w) => w.code), ['NIC_ORDER'])
  })

  it('never writes through a symlink refused as config, even a dangling one, nor below a symlinked directory', async () => {
    const text = "BOOTPROTO='dhcp'\nSTARTMODE='auto'\n"
    const guest = new MemoryGuest()
      .plantFile(UDEV_NAMING, '#\n')
      .plantFile('/etc/sysconfig/network/ifcfg-ens192', text)
      .plantSymlink('/etc/sysconfig/network/ifcfg-enp1s0', '/etc/cron.d/evil')
    const {ctx, warnings} = memoryJob(guest)
    await networkFixer.run(ctx)
    assert.equal(guest.nodes.has('/etc/cron.d/evil'), false, 'nothing written through the link')
    assert.equal(guest.file('/etc/sysconfig/network/ifcfg-ens192'), text)
    assert.ok(warnings.every((w) => !w.message.includes('cron')), 'the link target is never named')
    assert.ok(warnings.some((w) => /ifcfg-enp1s0 is a symbolic link; not written through/.test(w.message)))

    const elsewhere = new MemoryGuest()
      .plantFile(UDEV_NAMING, '#\n')
      .plantDir('/srv/other')
      .plantSymlink('/etc/systemd/network', '/srv/other')
      .plantFile('/etc/network/interfaces', 'auto ens192\niface ens192 inet dhcp\n')
    await networkFixer.run(memoryJob(elsewhere).ctx)
    assert.equal(elsewhere.file('/etc/network/interfaces'), 'auto enp1s0\niface enp1s0 inet dhcp\n')
    assert.equal(elsewhere.nodes.has('/srv/other/10-hyper2kvm-virtio-nic.link'), false, 'the .link pin is not written through a symlinked directory')
  })

  it('reads and rewrites a netplan value of 60 000 blanks in linear time (no backtracking regex on guest text)', async () => {
    const hostile = `network:\n  ethernets:\n    ens192:\n      dhcp4: true${' '.repeat(60_000)}x\n      set-name: ens192${' '.repeat(20_000)}\t\n`
    const guest = new MemoryGuest().plantFile(UDEV_NAMING, '#\n').plantFile('/etc/netplan/01.yaml', hostile)
    const started = performance.now()
    await inspectNetwork(guest)
    await networkFixer.run(memoryJob(guest).ctx)
    const took = performance.now() - started
    assert.ok(took < 1000, `took ${Math.round(took)} ms`)
    assert.match(guest.file('/etc/netplan/01.yaml')!, /^ {4}enp1s0:$/m)
  })

  it('an appliance refusal while reading the network config is risk NETWORK_UNKNOWN, not a failed job, and fixer:network then does not run', async () => {
    class RefusingGuest extends MemoryGuest {
      override async call(command: string, ...args: string[]): Promise<string> {
        if (command === 'ls' && args[0] === '/etc/netplan') throw new H2KError('H2K_GUEST_FAILED', 'ls: reply too large')
        return super.call(command, ...args)
      }
    }
    const guest = new RefusingGuest().plantFile(UDEV_NAMING, '#\n').plantFile('/etc/netplan/01.yaml', 'network: {}\n')
    const inspection = {risks: []} as unknown as Inspection
    await addNetwork(guest, inspection)
    assert.deepEqual(inspection.risks.map((r) => r.code), ['NETWORK_UNKNOWN'])
    assert.equal(inspection.network, undefined)
    assert.doesNotMatch(inspection.risks[0]!.message, /reply too large/)
    const {ctx} = memoryJob(guest, {inspection: {risks: inspection.risks}})
    assert.equal(await networkFixer.applies!(ctx), false)
  })

  it('reads at most MAX_NETWORK_TOTAL_BYTES of network config in all; the rest is refused unread', async () => {
    const guest = new MemoryGuest().plantFile(UDEV_NAMING, '#\n')
    const size = MAX_NETWORK_FILE_BYTES - 16
    const count = Math.ceil(MAX_NETWORK_TOTAL_BYTES / size) + 3
    for (let i = 0; i < count; i++) guest.plantFile(`/etc/netplan/${String(i).padStart(2, '0')}.yaml`, `# ${'x'.repeat(size - 3)}\n`)
    const {files, refusals} = await readNetworkFiles(guest)
    const read = files.reduce((sum, f) => sum + f.text.length, 0)
    assert.ok(read <= MAX_NETWORK_TOTAL_BYTES, `read ${read}`)
    assert.equal(files.length, Math.floor(MAX_NETWORK_TOTAL_BYTES / size))
    assert.equal(refusals.length, count - files.length)
    assert.match(refusals[0]!, /past 4 MiB in all; refused unread/)
  })

  it('net.ifnames=0 on the kernel command line: eth0 stays eth0, its MAC pin goes', async () => {
    const guest = new MemoryGuest()
      .plantFile(UDEV_NAMING, '#\n')
      .plantFile('/etc/default/grub', '#GRUB_CMDLINE_LINUX="quiet"\nGRUB_CMDLINE_LINUX="net.ifnames=0 biosdevname=0"\n')
      .plantFile('/etc/sysconfig/network-scripts/ifcfg-eth0', `DEVICE=eth0\nHWADDR=${MAC}\nBOOTPROTO=dhcp\n`)
      .plantFile('/etc/udev/rules.d/70-persistent-net.rules', `SUBSYSTEM=="net", ATTR{address}=="${MAC}", NAME="eth0"\n`)
    const {changes, ctx} = memoryJob(guest)
    await networkFixer.run(ctx)
    assert.equal(guest.file('/etc/sysconfig/network-scripts/ifcfg-eth0'), `DEVICE=eth0\n# [hyper2kvm] HWADDR=${MAC}\nBOOTPROTO=dhcp\n`)
    assert.equal(guest.nodes.has('/etc/udev/rules.d/70-persistent-net.rules'), false)
    assert.equal(changes.length, 2)
  })

  it('net.ifnames=0 in a /etc/default/grub.d drop-in (cloud images) or on grub.cfg\'s kernel lines: eth0 stays eth0; an oversized file is not read', async () => {
    const plants: Array<[string, string]> = [
      ['/etc/default/grub.d/50-cloudimg-settings.cfg', 'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT net.ifnames=0 console=ttyS0"\n'],
      ['/boot/grub/grub.cfg', "menuentry 'Debian' {\n\tlinux /vmlinuz root=UUID=1 ro net.ifnames=0 quiet\n}\n"],
    ]
    for (const [path, text] of plants) {
      const guest = new MemoryGuest()
        .plantFile(UDEV_NAMING, '#\n')
        .plantFile('/etc/default/grub', `GRUB_CMDLINE_LINUX=""\n#${'x'.repeat(70 * 1024)}\n`)
        .plantFile(path, text)
        .plantFile('/etc/network/interfaces', 'auto eth0\niface eth0 inet dhcp\n')
      const {changes, ctx} = memoryJob(guest)
      await networkFixer.run(ctx)
      assert.equal(guest.file('/etc/network/interfaces'), 'auto eth0\niface eth0 inet dhcp\n', path)
      assert.deepEqual(changes, [], path)
      assert.ok(!guest.calls.includes('download /etc/default/grub'), 'a 70 KiB /etc/default/grub is not read whole')
    }
    const commented = new MemoryGuest()
      .plantFile(UDEV_NAMING, '#\n')
      .plantFile('/boot/grub/grub.cfg', '# net.ifnames=0\nset x="net.ifnames=0"\n')
      .plantFile('/etc/network/interfaces', 'auto eth0\niface eth0 inet dhcp\n')
    await networkFixer.run(memoryJob(commented).ctx)
    assert.equal(commented.file('/etc/network/interfaces'), 'auto enp1s0\niface enp1s0 inet dhcp\n', 'only grub.cfg\'s kernel lines count')
  })

  it('numbers configured NICs only: a leftover rename rule for an old MAC does not push the NIC to a second slot', async () => {
    const guest = new MemoryGuest()
      .plantFile(UDEV_NAMING, '#\n')
      .plantFile('/etc/network/interfaces', 'auto eth1\niface eth1 inet dhcp\n')
      .plantFile('/etc/udev/rules.d/70-persistent-net.rules', `SUBSYSTEM=="net", ATTR{address}=="00:0c:29:00:00:01", NAME="eth0"\nSUBSYSTEM=="net", ATTR{address}=="${MAC}", NAME="eth1"\n`)
    const {ctx, warnings} = memoryJob(guest)
    await networkFixer.run(ctx)
    assert.equal(guest.file('/etc/network/interfaces'), 'auto enp1s0\niface enp1s0 inet dhcp\n')
    assert.equal(guest.nodes.has('/etc/udev/rules.d/70-persistent-net.rules'), false)
    assert.deepEqual(warnings, [])
  })

  it('an ifcfg file without DEVICE= (SUSE) is named by its file name: it moves to ifcfg-<new name>', async () => {
    const text = "BOOTPROTO='static'\nIPADDR='10.0.2.15/24'\nSTARTMODE='auto'\n"
    const guest = new MemoryGuest().plantFile(UDEV_NAMING, '#\n').plantFile('/etc/sysconfig/network/ifcfg-ens192', text)
    const {changes, ctx} = memoryJob(guest)
    await networkFixer.run(ctx)
    assert.equal(guest.nodes.has('/etc/sysconfig/network/ifcfg-ens192'), false)
    assert.equal(guest.file('/etc/sysconfig/network/ifcfg-enp1s0'), text)
    assert.deepEqual(changes.slice(0, 2).map((c) => [c.path, c.before === null, c.after === null]), [
      ['/etc/sysconfig/network/ifcfg-enp1s0', true, false],
      ['/etc/sysconfig/network/ifcfg-ens192', false, true],
    ])
  })

  it('route and rule files follow their ifcfg file: moved with it (SUSE ifroute-*), or their interface names rebound in place (RHEL route-*)', async () => {
    const suse = new MemoryGuest()
      .plantFile(UDEV_NAMING, '#\n')
      .plantFile('/etc/sysconfig/network/ifcfg-ens192', "BOOTPROTO='static'\nIPADDR='10.0.2.15/24'\n")
      .plantFile('/etc/sysconfig/network/ifroute-ens192', 'default 10.0.2.2 - ens192\n')
    const moved = memoryJob(suse)
    await networkFixer.run(moved.ctx)
    assert.equal(suse.nodes.has('/etc/sysconfig/network/ifroute-ens192'), false)
    assert.equal(suse.file('/etc/sysconfig/network/ifroute-enp1s0'), 'default 10.0.2.2 - enp1s0\n')
    assert.ok(moved.changes.some((c) => c.path === '/etc/sysconfig/network/ifroute-enp1s0' && c.before === null))

    const rhel = new MemoryGuest()
      .plantFile(UDEV_NAMING, '#\n')
      .plantFile('/etc/sysconfig/network-scripts/ifcfg-ens192', 'DEVICE=ens192\nBOOTPROTO=none\nIPADDR=10.0.2.15\nPREFIX=24\n')
      .plantFile('/etc/sysconfig/network-scripts/route-ens192', '10.1.0.0/16 via 10.0.2.1 dev ens192\n')
      .plantSymlink('/etc/sysconfig/network-scripts/rule-ens192', '/etc/shadow')
    const inPlace = memoryJob(rhel)
    await networkFixer.run(inPlace.ctx)
    assert.equal(rhel.file('/etc/sysconfig/network-scripts/route-ens192'), '10.1.0.0/16 via 10.0.2.1 dev enp1s0\n')
    assert.match(rhel.file('/etc/sysconfig/network-scripts/ifcfg-ens192')!, /^DEVICE=enp1s0$/m)
    assert.ok(inPlace.warnings.some((w) => /rule-ens192 is a symbolic link; refused/.test(w.message)))
    assert.ok(inPlace.warnings.every((w) => !w.message.includes('shadow')))
  })

  it('several NICs keep their VMware order (ens160 < ens192 < ens224) and the job is told to keep it', async () => {
    const keyfile = (name: string) => `[connection]\nid=${name}\ntype=ethernet\ninterface-name=${name}\n\n[ipv4]\nmethod=auto\n`
    const guest = new MemoryGuest().plantFile(UDEV_NAMING, '#\n')
    for (const name of ['ens224', 'ens192', 'ens160']) guest.plantFile(`/etc/NetworkManager/system-connections/${name}.nmconnection`, keyfile(name))
    const {ctx, warnings} = memoryJob(guest)
    await networkFixer.run(ctx)
    const bound = (name: string) => /interface-name=(\S+)/.exec(guest.file(`/etc/NetworkManager/system-connections/${name}.nmconnection`)!)?.[1]
    assert.deepEqual(['ens160', 'ens192', 'ens224'].map(bound), ['enp1s0', 'enp2s0', 'enp3s0'])
    assert.deepEqual(warnings.map((w) => w.code), ['NIC_ORDER'])
    assert.match(warnings[0]!.message, /3 NICs, bound in their VMware order \(ens160 → enp1s0, ens192 → enp2s0, ens224 → enp3s0\)/)
    assert.equal(guest.nodes.has(VIRTIO_NIC_LINK_PATH), false, 'a driver match cannot tell several NICs apart')
  })

  it('refuses a symlinked config without following it or saying where it points', async () => {
    const guest = new MemoryGuest()
      .plantFile(UDEV_NAMING, '#\n')
      .plantFile('/etc/shadow-ish', 'network:\n  ethernets:\n    ens192:\n      dhcp4: true\n')
      .plantSymlink('/etc/netplan/50-cloud-init.yaml', '/etc/shadow-ish')
    const {changes, ctx, warnings} = memoryJob(guest)
    await networkFixer.run(ctx)
    assert.equal(guest.file('/etc/shadow-ish'), 'network:\n  ethernets:\n    ens192:\n      dhcp4: true\n')
    assert.deepEqual(changes, [])
    assert.equal(warnings.length, 1)
    assert.match(warnings[0]!.message, /\/etc\/netplan\/50-cloud-init\.yaml is a symbolic link; refused/)
    assert.doesNotMatch(warnings[0]!.message, /shadow/)
    assert.ok(!guest.calls.some((c) => c.includes('shadow')), 'the target was never touched')
  })

  it('refuses an oversized config unread and a file name that is not printable text, quoting neither', async () => {
    const marker = 'H2K-HOSTILE-MARKER'
    const guest = new MemoryGuest()
      .plantFile(UDEV_NAMING, '#\n')
      .plantFile('/etc/network/interfaces.d/huge', `auto ens192\niface ens192 inet dhcp\n# ${marker}${'x'.repeat(MAX_NETWORK_FILE_BYTES)}\n`)
      .plantFile(`/etc/network/interfaces.d/\u001b]0;${marker}\u0007`, 'auto ens192\n')
    const {changes, ctx, warnings} = memoryJob(guest)
    await networkFixer.run(ctx)
    assert.deepEqual(changes, [])
    assert.equal(warnings.length, 2)
    for (const warning of warnings) assert.ok(!warning.message.includes(marker) && !warning.message.includes('\u001b'), warning.message)
    assert.ok(!guest.calls.some((c) => c.startsWith('download')), 'nothing was read')
  })

  it('a guest without network configuration is left alone', async () => {
    const guest = new MemoryGuest().plantFile(UDEV_NAMING, '#\n').plantFile('/etc/network/interfaces', 'auto lo\niface lo inet loopback\n')
    const {changes, ctx, warnings} = memoryJob(guest)
    await networkFixer.run(ctx)
    assert.deepEqual([changes, warnings], [[], []])
  })

  it('reuses the read inspection made of the same session, and still reports what was refused', async () => {
    const guest = ifupdownGuest().plantSymlink('/etc/netplan/01-netcfg.yaml', '/etc/passwd')
    await inspectNetwork(guest)
    const listed = guest.calls.filter((c) => c.startsWith('ls ')).length
    assert.ok(listed >= 2)
    const {ctx, warnings} = memoryJob(guest)
    await networkFixer.run(ctx)
    assert.equal(guest.calls.filter((c) => c.startsWith('ls ')).length, listed, 'no directory listed twice')
    assert.deepEqual(warnings.map((w) => w.message), ['/etc/netplan/01-netcfg.yaml is a symbolic link; refused, not followed (its network configuration is left as is).'])
    assert.match(guest.file('/etc/network/interfaces')!, /iface enp1s0 inet static/)
  })

  it('inspection reports each bound interface and the risk that it will not find the virtio NIC', async () => {
    const {network, risks} = await inspectNetwork(ifupdownGuest())
    assert.deepEqual(network.interfaces, [{file: '/etc/network/interfaces', mode: 'static', name: 'ens192', tool: 'ifupdown'}])
    assert.deepEqual(risks.map((r) => r.code), ['NIC_BOUND_TO_SOURCE'])
    assert.match(risks[0]!.message, /by name \(ens192\) and by MAC/)
    const dhcp = await inspectNetwork(networkdGuest())
    assert.deepEqual(dhcp.network.interfaces, [{file: '/etc/systemd/network/10-ens160.network', mode: 'dhcp', name: 'ens160', tool: 'networkd'}])
  })
})
