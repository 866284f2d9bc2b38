import {constants} from 'node:fs'
import {access, readdir} from 'node:fs/promises'
import {join} from 'node:path'
import {performance} from 'node:perf_hooks'

import {H2KError, isH2KError} from '@hyper2kvm/plugin-api'
import {runTool} from '../exec/run-tool.js'
import {QEMU_SYSTEM} from './boot-args.js'
import {startQemu} from './qemu-process.js'

export interface KvmProbeResult {
  usable: boolean
  /** One sentence a user can act on. */
  reason: string
  seconds: number
}

export interface KvmProbeOptions {
  signal?: AbortSignal
  /** How long the probe kernel may take to reach its panic under KVM (it takes ~1 s where KVM works). */
  timeoutMs?: number
}

/**
 * The console line that proves the guest ran its kernel to the end of early boot: without a disk or initrd
 * it panics, unable to mount a root file system, and -no-reboot turns that into a qemu exit.
 */
const KERNEL_REACHED_ROOT = /Kernel panic - not syncing|VFS: Unable to mount root fs/
const OUTPUT_KEEP = 4096

/** The newest readable host kernel image in `bootDir` (any x86-64 kernel boots far enough for the probe). */
export async function findProbeKernel(bootDir = '/boot'): Promise<string | undefined> {
  let names: string[]
  try {
    names = await readdir(bootDir)
  } catch (error) {
    // No /boot at all (a container): there is no kernel to probe with, which the caller reports.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
  const kernels = names.filter((name) => /^vmlinuz-\d/.test(name)).sort((a, b) => b.localeCompare(a, 'en', {numeric: true}))
  for (const name of kernels) {
    try {
      // Ubuntu installs kernels mode 0600: unreadable for a non-root user, which is not a reason to fail.
      await access(join(bootDir, name), constants.R_OK)
      return join(bootDir, name)
    } catch {
      continue
    }
  }
  return undefined
}

function lastConsoleLine(output: string): string {
  const lines = output.split(/\r?\n/).map((line) => line.replace(/\x1b\[[0-9;?]*[a-zA-Z]|\x1bc/g, '').trim())
  return lines.findLast((line) => line.length > 0) ?? ''
}

function seconds(since: number): number {
  return Math.round((performance.now() - since) / 100) / 10
}

/**
 * Whether KVM really runs guests: /dev/kvm can exist and open while guests hang (nested or emulated
 * virtualisation), so boot `kernel` under KVM with no disk and wait for its root-mount panic. qemu is
 * always stopped before this returns.
 */
export async function probeKvmWithKernel(kernel: string, options: KvmProbeOptions = {}): Promise<KvmProbeResult> {
  const timeoutMs = options.timeoutMs ?? 20_000
  let output = ''
  let reached: () => void = () => {}
  const reachedRoot = new Promise<void>((resolve) => {
    reached = resolve
  })
  // -cpu host: what the appliance and boot checks use under KVM, so the probe tests the same thing.
  const args = ['-accel', 'kvm', '-cpu', 'host', '-m', '256', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-nic', 'none']
  const qemu = startQemu(
    [...args, '-no-reboot', '-kernel', kernel, '-append', 'console=ttyS0 panic=-1'],
    {
      onStdout: (chunk) => {
        output = (output + chunk).slice(-OUTPUT_KEEP)
        if (KERNEL_REACHED_ROOT.test(output)) reached()
      },
      stopGraceMs: 2000,
    },
  )
  const started = performance.now()
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  try {
    const outcome = await Promise.race([
      reachedRoot.then(() => 'reached' as const),
      qemu.exited.then(() => 'exited' as const),
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs)
      }),
      new Promise<'aborted'>((resolve) => {
        onAbort = () => resolve('aborted')
        if (options.signal?.aborted) onAbort()
        else options.signal?.addEventListener('abort', onAbort, {once: true})
      }),
    ])
    if (outcome === 'aborted') throw new H2KError('H2K_CANCELLED', 'The KVM probe was cancelled.', {phase: 'setup'})
    // Exiting right after the panic is the expected ending: decide on the output, not on how qemu ended.
    if (outcome === 'reached' || KERNEL_REACHED_ROOT.test(output)) {
      return {reason: `KVM booted a test kernel (${kernel}) in ${seconds(started)} s`, seconds: seconds(started), usable: true}
    }
    if (outcome === 'exited') {
      const exit = await qemu.exited
      if (exit.startError) throw exit.startError
      const why = exit.stderr.split('\n').at(-1) || `qemu exited with code ${exit.exitCode ?? exit.signal ?? 'unknown'}`
      return {reason: `qemu could not run a guest under KVM: ${why}`, seconds: seconds(started), usable: false}
    }
    const last = lastConsoleLine(output)
    return {
      reason:
        `/dev/kvm exists but a test kernel made no progress under KVM within ${timeoutMs / 1000} s` +
        `${last ? ` (console stopped at: ${JSON.stringify(last.slice(0, 80))})` : ' (no console output)'}: nested or emulated KVM that hangs guests`,
      seconds: seconds(started),
      usable: false,
    }
  } finally {
    clearTimeout(timer)
    if (onAbort) options.signal?.removeEventListener('abort', onAbort)
    await qemu.stop()
  }
}

/**
 * The weaker check when no kernel is readable: can qemu open and initialise KVM at all? It cannot prove
 * that guests run (the hang this module exists for happens after initialisation), so callers use it only
 * to explain a TCG verdict.
 */
export async function kvmInitialises(options: KvmProbeOptions = {}): Promise<{ok: boolean; detail: string}> {
  try {
    // A machine without CPUs and a monitor on stdin that reads "quit": qemu exits 0 exactly when the
    // accelerator initialised.
    await runTool(QEMU_SYSTEM, ['-accel', 'kvm', '-machine', 'none', '-nodefaults', '-display', 'none', '-monitor', 'stdio'], {
      input: 'quit\n',
      phase: 'setup',
      signal: options.signal,
    })
    return {detail: 'qemu initialises KVM', ok: true}
  } catch (error) {
    if (!isH2KError(error) || error.code !== 'H2K_TOOL_FAILED') throw error
    const stderr = typeof error.details.stderr === 'string' ? error.details.stderr : ''
    return {detail: stderr.split('\n').at(-1) || error.message, ok: false}
  }
}
