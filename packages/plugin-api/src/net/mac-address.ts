/**
 * MAC addresses as every part of the house reads them: the boot check's NIC, the libvirt domain and the
 * network fixer's keep_macs decision must agree on which source MAC a KVM NIC may keep.
 */

const CANONICAL = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/

/** Six lower-case hex pairs with ':', unicast (first octet even), not all zeros: the only MAC a KVM NIC gets. */
export function isUnicastMac(mac: string): boolean {
  return CANONICAL.test(mac) && (Number.parseInt(mac.slice(0, 2), 16) & 1) === 0 && mac !== '00:00:00:00:00:00'
}
