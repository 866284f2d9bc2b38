import type {Accel} from '../boot/boot-args.js'

export interface ApplianceShape {
  memoryMiB: number
  cpus: number
  /** Appended to the appliance kernel's command line (libguestfs `set-append`). */
  append: string
}

/**
 * The libguestfs appliance's size and kernel options, per accelerator. Measured on the bench guest
 * (bench/README.md, "bench/pipeline"): the fixers' work inside the appliance is thousands of short
 * processes (update-initramfs, grub-mkconfig), so it is bound by fork/exec, not by compute.
 *
 * - Under TCG, one vCPU: with two, multi-threaded TCG must stop every vCPU for each cross-CPU TLB flush,
 *   and a fork/exec loop took 1.4-1.6 times as long as with one (on a 2-core host shared
 *   with other work); the compressors that could use a second vCPU are a small part of a rebuild.
 *   Under KVM, two as before.
 * - `mitigations=off`: the appliance kernel's Spectre mitigations (retpolines) cost every indirect
 *   branch, which TCG emulates expensively, and protect nothing here: the only code run in the
 *   appliance besides libguestfs' daemon is the guest's own tools, as root in a throw-away VM that
 *   holds nothing but the job's disks; the boundary that matters is the VM's, which the guest kernel's
 *   options do not change. A user's LIBGUESTFS_APPEND is kept (and comes last, so it wins).
 */
export function applianceShape(accel: Accel, env: NodeJS.ProcessEnv = process.env): ApplianceShape {
  const userAppend = env.LIBGUESTFS_APPEND?.trim()
  return {
    append: ['mitigations=off', userAppend].filter(Boolean).join(' '),
    cpus: accel === 'tcg' ? 1 : 2,
    memoryMiB: 1536,
  }
}
