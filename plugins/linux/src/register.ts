import {register} from '@hyper2kvm/plugin-api'

import {fstabFixer} from './fstab-fixer.js'
import {grubFixer} from './grub-fixer.js'
import {guestInspector} from './guest-inspector.js'
import {initramfsFixer} from './initramfs-fixer.js'
import {networkFixer} from './network-fixer.js'
import {vmwareToolsFixer} from './vmware-tools-fixer.js'

/** oclif `hyper2kvm:register` hook: the Linux guest inspector and the fstab, GRUB, initramfs, network and VMware Tools fixers. */
export default async function registerLinux() {
  return register(guestInspector, fstabFixer, grubFixer, initramfsFixer, networkFixer, vmwareToolsFixer)
}
