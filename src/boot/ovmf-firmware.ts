import {constants} from 'node:fs'
import {access, copyFile} from 'node:fs/promises'
import {join} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import type {OvmfImages} from './boot-args.js'

/**
 * Where distributions install OVMF, most specific first. The plain (non-secboot) builds: the secure-boot
 * ones need SMM on q35 and refuse unsigned loaders, which would test the firmware instead of the guest.
 */
const SPLIT_CANDIDATES: ReadonlyArray<{code: string; vars: string}> = [
  {code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd'}, // Debian 12, Ubuntu 22.04+ (DEBIAN_OVMF)
  {code: '/usr/share/OVMF/OVMF_CODE.fd', vars: '/usr/share/OVMF/OVMF_VARS.fd'}, // older Debian/Ubuntu
  {code: '/usr/share/edk2/ovmf/OVMF_CODE.fd', vars: '/usr/share/edk2/ovmf/OVMF_VARS.fd'}, // Fedora, RHEL
  {code: '/usr/share/edk2/x64/OVMF_CODE.4m.fd', vars: '/usr/share/edk2/x64/OVMF_VARS.4m.fd'}, // Arch
  {code: '/usr/share/qemu/ovmf-x86_64-code.bin', vars: '/usr/share/qemu/ovmf-x86_64-vars.bin'}, // openSUSE
]
const COMBINED_CANDIDATES = ['/usr/share/ovmf/OVMF.fd', '/usr/share/qemu/OVMF.fd']

async function readable(path: string): Promise<boolean> {
  try {
    await access(path, constants.R_OK)
    return true
  } catch {
    return false
  }
}

/** Where Debian's `ovmf` package installs the split 4 MiB build: what a domain names when this host has no OVMF. */
export const DEBIAN_OVMF = {code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd'} as const

/**
 * The OVMF build of this host the boot check loads (and a libvirt domain names): the first split build
 * whose code and variable template are both readable, else a combined image; undefined when none is installed.
 */
export async function findOvmf(): Promise<OvmfImages | undefined> {
  for (const candidate of SPLIT_CANDIDATES) {
    if ((await readable(candidate.code)) && (await readable(candidate.vars))) return {...candidate}
  }
  for (const combined of COMBINED_CANDIDATES) if (await readable(combined)) return {combined}
  return undefined
}

/**
 * The OVMF images for a UEFI boot check. A split build gets a private copy of its variable store in
 * `workDir` (the guest writes boot entries there, and the system template must stay pristine).
 */
export async function prepareOvmf(workDir: string): Promise<OvmfImages> {
  const found = await findOvmf()
  if (found && 'combined' in found) return found
  if (found) {
    const vars = join(workDir, 'OVMF_VARS.fd')
    await copyFile(found.vars, vars)
    return {code: found.code, vars}
  }
  throw new H2KError('H2K_TOOL_MISSING', 'UEFI firmware (OVMF) for the boot check is not installed.', {
    suggestions: ['Install it: apt-get install ovmf (Fedora/RHEL: edk2-ovmf).', 'Or boot-check the guest with BIOS firmware if it boots that way.'],
    details: {searched: [...SPLIT_CANDIDATES.map((c) => c.code), ...COMBINED_CANDIDATES]},
  })
}
