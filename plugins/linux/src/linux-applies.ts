import type {StageContext} from '@hyper2kvm/plugin-api'

/** Fixers run only on an inspected Linux guest and only when fixing is on. */
export function isFixableLinux(ctx: StageContext): boolean {
  return ctx.job.fix.enabled && ctx.inspection?.os === 'linux' && ctx.guest.isOpen
}
