import {join} from 'node:path'

import {bootCheck} from '../boot/boot-check.js'
import {H2KError, isBareFilesystemDisk, type PipelineStage, type StageContext} from '@hyper2kvm/plugin-api'
import {chooseAccel} from '../guest/accel.js'
import {domainHardware} from '../libvirt/domain-hardware.js'

/**
 * Why the boot disk cannot boot on its own, known before any boot: inspection's NO_BOOTLOADER, or (fixes off,
 * no inspection) a boot disk the raw loader recognised as a bare filesystem.
 */
function cannotBootOnItsOwn(ctx: StageContext): string | undefined {
  const risk = ctx.inspection?.risks.find((r) => r.code === 'NO_BOOTLOADER')
  if (risk) return risk.message
  const disk = ctx.source?.disks[0]
  if (disk && isBareFilesystemDisk(disk)) {
    return `The image is a bare ${disk.subformat} filesystem with no partition table and no boot loader: it cannot boot on its own; boot it with a kernel and initrd from the host (direct kernel boot) or install a boot loader.`
  }
  return undefined
}

/**
 * VERIFY (--verify-boot): boot the converted disks (boot disk first) with qemu on the hardware the libvirt
 * domain (--emit libvirt) describes: q35, the guest's firmware (UEFI through OVMF), disks on virtio-blk, the
 * first NIC as virtio-net (with its MAC under --keep-macs; none when the VM has no NIC), serial console to a
 * log. Passes on a login prompt (or --boot-pattern). Runs on the `.part` files in snapshot mode, before
 * anything is committed, and never modifies them. The daemon runs this same stage.
 */
export const bootVerifier: PipelineStage = {
  after: ['qemu-img-check', 'qemu-img-compare'],
  applies: (ctx) => ctx.job.boot.verify,
  description: 'boot the output on virtio under qemu (KVM if usable, else TCG) and wait for a login prompt (--verify-boot)',
  kind: 'verifier',
  name: 'boot',
  async run(ctx) {
    // Minutes of a firmware finding nothing to boot would prove nothing the image does not already say.
    const why = cannotBootOnItsOwn(ctx)
    if (why) {
      throw new H2KError('H2K_BOOT_FAILED', `--verify-boot cannot boot this image: ${why}`, {
        suggestions: ['Convert it without --verify-boot (verify_boot: false), then boot it with -kernel/-initrd and root=UUID=… (libvirt: <kernel>, <initrd>, <cmdline>), or install a boot loader in the guest.'],
      })
    }
    if (!ctx.source) throw new H2KError('H2K_INTERNAL', 'The boot check runs after LOAD.')
    // The domain's hardware; its warnings are the libvirt step's to give (--emit libvirt).
    const {hardware} = domainHardware({inspection: ctx.inspection, job: ctx.job, source: ctx.source})
    const firmware = hardware.firmware
    const [nic] = hardware.nics
    const accel = await chooseAccel({preference: ctx.job.accel, signal: ctx.signal})
    const serialLog = join(ctx.workDir, 'boot-serial.log')
    const timeout = ctx.job.boot.timeoutSeconds
    const result = await bootCheck({
      accel: accel.accel,
      disks: ctx.outputs.map((plan) => ({format: ctx.job.format, path: plan.partPath})),
      firmware,
      machine: hardware.machine,
      nic: nic ?? false,
      onProgress: (seconds, lastLine) => ctx.report({message: `booting (${accel.accel}, ${firmware}) ${Math.round(seconds)}s${lastLine ? `: ${lastLine.slice(0, 60)}` : ''}`, percent: Math.min(99, (seconds / timeout) * 100)}),
      passPattern: ctx.job.boot.pattern ? new RegExp(ctx.job.boot.pattern, 'm') : undefined,
      sandbox: ctx.job.sandbox,
      serialLog,
      signal: ctx.signal,
      timeoutSeconds: timeout,
    })
    const summary = {
      accel: result.accel,
      bus: result.bus,
      firmware: result.firmware,
      machine: result.machine,
      ...(nic?.mac === undefined ? {} : {mac: nic.mac}),
      matchedLine: result.matchedLine,
      passed: result.passed,
      reason: result.reason,
      seconds: Math.round(result.seconds * 10) / 10,
      serialExcerpt: result.serialTail,
    }
    ctx.verification.boot = summary
    if (!result.passed) {
      throw new H2KError('H2K_BOOT_FAILED', `The converted guest did not boot on virtio (${result.reason} after ${summary.seconds} s)${result.matchedLine ? `: ${result.matchedLine}` : ''}.\nLast console lines:\n${result.serialTail.slice(-12).join('\n')}`, {
        details: summary,
      })
    }
  },
}
