import {isAbsolute} from 'node:path'

import {H2KError, type OutputFormat} from '@hyper2kvm/plugin-api'
import type {OvmfImages} from '../boot/boot-args.js'
import type {DomainHardware} from './domain-hardware.js'
import {element, renderXml, type XmlElement} from './xml-element.js'

export interface DomainDisk {
  /** Absolute path of the output. */
  path: string
  format: OutputFormat
}

export interface DomainXmlInput {
  hardware: DomainHardware
  /** Boot disk first. */
  disks: readonly DomainDisk[]
  /** The firmware images a UEFI domain loads (ignored for BIOS). */
  ovmf?: OvmfImages
}

const FORMATS: ReadonlySet<string> = new Set<OutputFormat>(['qcow2', 'raw', 'vdi'])

/** vda … vdz, vdaa … (the kernel's own naming after z). */
export function virtioDiskName(index: number): string {
  let name = ''
  for (let n = index; n >= 0; n = Math.floor(n / 26) - 1) name = String.fromCharCode(97 + (n % 26)) + name
  return `vd${name}`
}

function diskElement(disk: DomainDisk, index: number): XmlElement {
  if (!isAbsolute(disk.path)) throw new H2KError('H2K_INTERNAL', 'A libvirt domain names its disks by absolute path.')
  if (!FORMATS.has(disk.format)) throw new H2KError('H2K_INTERNAL', `No libvirt disk format for ${JSON.stringify(disk.format)}.`)
  return element('disk', {device: 'disk', type: 'file'}, [
    // discard=unmap: the guest's TRIM keeps a sparse qcow2/raw output sparse.
    element('driver', {discard: 'unmap', name: 'qemu', type: disk.format}),
    element('source', {file: disk.path}),
    element('target', {bus: 'virtio', dev: virtioDiskName(index)}),
    index === 0 ? element('boot', {order: 1}) : undefined,
  ])
}

function osElement(hardware: DomainHardware, ovmf: OvmfImages | undefined): XmlElement {
  const type = element('type', {arch: 'x86_64', machine: hardware.machine}, 'hvm')
  if (hardware.firmware === 'bios') return element('os', {}, [type])
  if (!ovmf) throw new H2KError('H2K_INTERNAL', 'A UEFI domain needs OVMF firmware paths.')
  if ('combined' in ovmf) return element('os', {}, [type, element('loader', {readonly: 'yes', type: 'rom'}, ovmf.combined)])
  // The plain (not secure-boot) build, as the boot test loads it; libvirt copies the template into a
  // per-domain variable store on first start.
  return element('os', {}, [type, element('loader', {readonly: 'yes', secure: 'no', type: 'pflash'}, ovmf.code), element('nvram', {template: ovmf.vars})])
}

function nicElement(nic: {mac?: string}): XmlElement {
  return element('interface', {type: 'network'}, [
    nic.mac === undefined ? undefined : element('mac', {address: nic.mac}),
    element('source', {network: 'default'}),
    element('model', {type: 'virtio'}),
  ])
}

/**
 * A libvirt domain (KVM) for the converted VM: q35, the firmware the guest boots with, virtio disks on the
 * outputs, virtio NICs on libvirt's `default` network, a serial console, the qemu-guest-agent channel, a
 * VGA display on VNC bound to 127.0.0.1, a virtio balloon and RNG. Every value goes through the escaping
 * writer; the hardware has been validated by domainHardware().
 */
export function domainXml({disks, hardware, ovmf}: DomainXmlInput): string {
  if (disks.length === 0) throw new H2KError('H2K_INTERNAL', 'A libvirt domain needs at least one disk.')
  const devices: Array<XmlElement | undefined> = [
    ...disks.map((disk, index) => diskElement(disk, index)),
    ...hardware.nics.map((nic) => nicElement(nic)),
    element('serial', {type: 'pty'}, [element('target', {port: 0, type: 'isa-serial'}, [element('model', {name: 'isa-serial'})])]),
    element('console', {type: 'pty'}, [element('target', {port: 0, type: 'serial'})]),
    element('controller', {index: 0, type: 'virtio-serial'}),
    element('channel', {type: 'unix'}, [element('target', {name: 'org.qemu.guest_agent.0', type: 'virtio'})]),
    // VNC on loopback only: reached through an SSH tunnel or virt-manager over SSH, never from the network.
    element('graphics', {autoport: 'yes', type: 'vnc'}, [element('listen', {address: '127.0.0.1', type: 'address'})]),
    // Standard VGA: SeaBIOS and OVMF both drive it, every Linux kernel has a driver (bochs-drm, or the
    // firmware framebuffer), Windows too; a server needs no 3D (virtio-gpu) or SPICE acceleration (qxl).
    element('video', {}, [element('model', {heads: 1, primary: 'yes', type: 'vga', vram: 16384})]),
    element('memballoon', {model: 'virtio'}),
    element('rng', {model: 'virtio'}, [element('backend', {model: 'random'}, '/dev/urandom')]),
  ]
  const domain = element('domain', {type: 'kvm'}, [
    element('name', {}, hardware.name),
    hardware.title === undefined ? undefined : element('title', {}, hardware.title),
    element('memory', {unit: 'MiB'}, hardware.memoryMiB),
    element('currentMemory', {unit: 'MiB'}, hardware.memoryMiB),
    element('vcpu', {placement: 'static'}, hardware.cpus),
    osElement(hardware, ovmf),
    element('features', {}, [element('acpi'), element('apic')]),
    // The host's CPU, as the boot test uses under KVM (-cpu host); choose host-model to live-migrate between unlike hosts.
    element('cpu', {check: 'none', migratable: 'on', mode: 'host-passthrough'}),
    element('clock', {offset: hardware.clock}, [
      element('timer', {name: 'rtc', tickpolicy: 'catchup'}),
      element('timer', {name: 'pit', tickpolicy: 'delay'}),
      element('timer', {name: 'hpet', present: 'no'}),
    ]),
    element('on_poweroff', {}, 'destroy'),
    element('on_reboot', {}, 'restart'),
    element('on_crash', {}, 'destroy'),
    element('devices', {}, devices),
  ])
  return renderXml(domain)
}
