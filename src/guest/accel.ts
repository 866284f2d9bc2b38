import {constants} from 'node:fs'
import {access} from 'node:fs/promises'
import {release} from 'node:os'

import {type AccelCacheKey, defaultCacheDir, readCachedVerdict, writeCachedVerdict} from '../boot/accel-cache.js'
import {type Accel, QEMU_SYSTEM} from '../boot/boot-args.js'
import {findProbeKernel, kvmInitialises, probeKvmWithKernel} from '../boot/kvm-probe.js'
import {type AccelPreference, H2KError} from '@hyper2kvm/plugin-api'
import {runTool} from '../exec/run-tool.js'

export interface ChooseAccelOptions {
  preference: AccelPreference
  signal?: AbortSignal
  /** Where the probe verdict is cached; default $XDG_CACHE_HOME/hyper2kvm or ~/.cache/hyper2kvm. */
  cacheDir?: string
  /** For tests: the KVM device and the directory holding host kernels. */
  kvmDevice?: string
  bootDir?: string
  probeTimeoutMs?: number
}

export interface AccelChoice {
  accel: Accel
  /** Why, in words a user can act on (shown in logs and report.json). */
  reason: string
  /** A probe VM ran for this answer (false for preferences, obvious cases and cache hits). */
  probed: boolean
  /** Set when the verdict could not be cached; worth a debug log, never a failure. */
  cacheWarning?: string
}

const KVM_DEVICE = '/dev/kvm'

type DeviceState = 'usable' | 'absent' | 'no-access'

async function kvmDeviceState(device: string): Promise<DeviceState> {
  try {
    await access(device, constants.R_OK | constants.W_OK)
    return 'usable'
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : 'no-access'
  }
}

async function qemuVersion(signal: AbortSignal | undefined): Promise<string> {
  const {stdout} = await runTool(QEMU_SYSTEM, ['--version'], {phase: 'setup', signal})
  return stdout.split('\n')[0]?.trim() ?? ''
}

function requireKvm(state: DeviceState, device: string): void {
  if (state === 'absent') {
    throw new H2KError('H2K_USAGE', `KVM was requested but ${device} does not exist on this host.`, {
      phase: 'setup',
      suggestions: [
        'Use --accel auto or --accel tcg (software emulation, slower).',
        'Enable virtualisation in the firmware and load the module (modprobe kvm_intel or kvm_amd);' +
          ' in a container, pass the device through.',
      ],
    })
  }
  if (state === 'no-access') {
    throw new H2KError('H2K_USAGE', `KVM was requested but ${device} is not readable and writable by this user.`, {
      phase: 'setup',
      suggestions: ['Add the user to the kvm group (usermod -aG kvm USER, then log in again), or use --accel tcg.'],
    })
  }
}

interface ProbeVerdict {
  accel: Accel
  reason: string
  /** Only a test boot is worth remembering; the kernel-less check is cheap and a kernel may be installed later. */
  cacheable: boolean
}

async function probe(options: ChooseAccelOptions): Promise<ProbeVerdict> {
  const kernel = await findProbeKernel(options.bootDir)
  if (kernel) {
    const result = await probeKvmWithKernel(kernel, {signal: options.signal, timeoutMs: options.probeTimeoutMs})
    return {accel: result.usable ? 'kvm' : 'tcg', cacheable: true, reason: result.reason}
  }
  // Without a kernel nothing proves that guests run: initialising is not enough (the hang comes later), so stay on TCG.
  const init = await kvmInitialises({signal: options.signal})
  const why = init.ok
    ? 'qemu opens KVM, but no readable kernel in /boot was found to prove guests run under it'
    : `qemu cannot use KVM: ${init.detail}`
  return {accel: 'tcg', cacheable: false, reason: `${why}; using TCG (pass --accel kvm to force KVM)`}
}

/**
 * Decide between KVM and TCG for the libguestfs appliance and boot checks. An explicit preference is
 * honoured without probing; `auto` boots a tiny test VM under KVM once per host configuration (the verdict
 * is cached), because /dev/kvm can exist while guests hang on it.
 */
export async function chooseAccel(options: ChooseAccelOptions): Promise<AccelChoice> {
  const device = options.kvmDevice ?? KVM_DEVICE
  if (options.preference === 'tcg') return {accel: 'tcg', probed: false, reason: 'TCG requested'}
  const state = await kvmDeviceState(device)
  if (options.preference === 'kvm') {
    requireKvm(state, device)
    return {accel: 'kvm', probed: false, reason: 'KVM requested (not probed)'}
  }
  if (state === 'absent') {
    return {accel: 'tcg', probed: false, reason: `no ${device} on this host (KVM module not loaded, or not passed into this container)`}
  }
  if (state === 'no-access') {
    return {accel: 'tcg', probed: false, reason: `${device} exists but this user cannot open it (not in the kvm group?)`}
  }

  const cacheDir = options.cacheDir ?? defaultCacheDir()
  const key: AccelCacheKey = {hostKernel: release(), kvmDevice: true, qemu: await qemuVersion(options.signal)}
  const cached = await readCachedVerdict(cacheDir, key)
  if (cached) return {accel: cached.accel, probed: false, reason: `${cached.reason} (cached verdict from ${cached.probedAt})`}

  const {accel, cacheable, reason} = await probe(options)
  const cacheWarning = cacheable ? await writeCachedVerdict(cacheDir, key, {accel, probedAt: new Date().toISOString(), reason}) : undefined
  return {accel, probed: true, reason, ...(cacheWarning ? {cacheWarning} : {})}
}

/**
 * Environment for guestfish and other libguestfs tools: the direct backend (no libvirt daemon needed) and,
 * on TCG, force_tcg so libguestfs does not try the KVM we just found unusable. Settings the user already
 * put in LIBGUESTFS_BACKEND_SETTINGS are kept; libguestfs splits that variable on colons.
 */
export function libguestfsEnv(accel: Accel, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const result: Record<string, string> = {LIBGUESTFS_BACKEND: 'direct'}
  const userSettings = (env.LIBGUESTFS_BACKEND_SETTINGS ?? '').split(':').filter((setting) => setting.length > 0)
  // libguestfs refuses force_kvm together with force_tcg, and the user's force_* choice is what --accel replaces.
  const kept = userSettings.filter((setting) => setting !== 'force_tcg' && setting !== 'force_kvm')
  const settings = accel === 'tcg' ? [...kept, 'force_tcg'] : kept
  if (settings.length > 0) result.LIBGUESTFS_BACKEND_SETTINGS = settings.join(':')
  else if (env.LIBGUESTFS_BACKEND_SETTINGS !== undefined) result.LIBGUESTFS_BACKEND_SETTINGS = ''
  return result
}
