import type {StageContext} from '@hyper2kvm/plugin-api'

/**
 * Fixers run only on an inspected Linux guest and only when fixing is on, and never on a bare filesystem
 * (risk NO_BOOTLOADER): it is booted with a kernel from the host, hyper2kvm does not invent a boot loader for
 * it, and the risk says what the guest needs instead; inspection mounts it read-only, so its output is the
 * source's bytes.
 */
export function isFixableLinux(ctx: StageContext): boolean {
  return ctx.job.fix.enabled && ctx.inspection?.os === 'linux' && ctx.guest.isOpen && !ctx.inspection.risks.some((risk) => risk.code === 'NO_BOOTLOADER')
}
