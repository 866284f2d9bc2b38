import assert from 'node:assert/strict'

import {espStubTarget} from '../../../plugins/linux/src/transforms/esp-stub.js'

// The grub.cfg stubs distributions' grub-install leaves on the ESP, byte for byte as they write them, and
// what each chains to. The grub fixer follows them (esp-stub-check.ts) so the config GRUB really reads is
// the one checked for a root= virtio can find.
const STUBS: Array<{name: string; text: string; target: ReturnType<typeof espStubTarget>}> = [
  {
    name: 'Debian 12 grub-install --uefi-secure-boot, separate /boot',
    target: {by: 'uuid', config: '/grub/grub.cfg', value: '0e6b1b9f-2c5a-4a4e-9d3e-7b1c2d3e4f50'},
    text: "search.fs_uuid 0e6b1b9f-2c5a-4a4e-9d3e-7b1c2d3e4f50 root hd0,gpt2 \nset prefix=($root)'/grub'\nconfigfile $prefix/grub.cfg\n",
  },
  {
    name: 'Ubuntu 22.04, /boot on the LVM root',
    target: {by: 'uuid', config: '/boot/grub/grub.cfg', value: '5f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b'},
    text: "search.fs_uuid 5f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b root lvmid/AbCdEf-1234/GhIjKl-5678 \nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n",
  },
  {
    name: 'RHEL 9 / Fedora: search --set=dev, prefix exported',
    target: {by: 'uuid', config: '/grub2/grub.cfg', value: '3a2b1c0d-9e8f-7a6b-5c4d-3e2f1a0b9c8d'},
    text: 'search --no-floppy --root-dev-only --fs-uuid --set=dev 3a2b1c0d-9e8f-7a6b-5c4d-3e2f1a0b9c8d\nset prefix=($dev)/grub2\n\nexport $prefix\nconfigfile $prefix/grub.cfg\n',
  },
  {
    name: 'by label, bare path after search --set (GRUB root)',
    target: {by: 'label', config: '/boot/grub/grub.cfg', value: 'rootfs'},
    text: '# written by hand\nsearch --no-floppy --label --set rootfs\nconfigfile /boot/grub/grub.cfg\n',
  },
  {
    name: 'a configfile on another device than the searched one cannot be followed',
    target: undefined,
    text: 'search.fs_uuid 0e6b1b9f-2c5a-4a4e-9d3e-7b1c2d3e4f50 dev\nconfigfile (hd1,gpt2)/grub/grub.cfg\n',
  },
  {name: 'search by file is not an id', target: undefined, text: 'search --file --set=root /boot/grub/grub.cfg\nconfigfile /boot/grub/grub.cfg\n'},
  {name: 'no search at all', target: undefined, text: 'configfile (hd0,gpt2)/grub/grub.cfg\n'},
]

describe('ESP grub.cfg stubs: what they chain to', () => {
  for (const {name, target, text} of STUBS) {
    it(name, () => assert.deepEqual(espStubTarget(text), target))
  }
})
