import type {JobWarning, OutputPlan} from '@hyper2kvm/plugin-api'
import {DEBIAN_OVMF, findOvmf} from '../boot/ovmf-firmware.js'
import {domainHardware, type HardwareInput} from './domain-hardware.js'
import {domainXml} from './domain-xml.js'

/**
 * The text of `<name>.xml` (--emit libvirt) for a job's planned outputs, named by their final paths, and the
 * warnings for every source fact it did not use. A UEFI domain names this host's OVMF (the build the boot
 * test loads), or Debian's paths when none is installed.
 */
export async function libvirtDomain(input: HardwareInput & {outputs: readonly OutputPlan[]}): Promise<{xml: string; warnings: JobWarning[]}> {
  const {hardware, warnings} = domainHardware(input)
  let ovmf = hardware.firmware === 'efi' ? await findOvmf() : undefined
  if (hardware.firmware === 'efi' && ovmf === undefined) {
    ovmf = {...DEBIAN_OVMF}
    warnings.push({code: 'OVMF_NOT_FOUND', message: `No OVMF firmware is installed on this host; the domain names Debian's (${DEBIAN_OVMF.code}): install ovmf (Fedora/RHEL: edk2-ovmf) where it runs, or edit <loader>/<nvram>.`})
  }
  const disks = input.outputs.map((plan) => ({format: input.job.format, path: plan.finalPath}))
  return {warnings, xml: domainXml({disks, hardware, ovmf})}
}
