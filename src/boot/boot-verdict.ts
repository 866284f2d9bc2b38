export type BootFailure = 'kernel-panic' | 'initramfs-shell' | 'emergency-mode' | 'no-boot-device'
export type BootReason = 'login-prompt' | 'pattern' | BootFailure | 'timeout' | 'qemu-exited'

/**
 * A getty prompt ("myhost login: "). It starts a line but need not end one: it has no newline of its own,
 * and kernel messages printed to the console right after it land on the same line (seen with q35).
 */
export const LOGIN_PROMPT = /^(?:\S+\s+)?login:(?:\s|$)/

/**
 * Console lines after which a guest never reaches a login prompt by itself: failing on them at once saves
 * the rest of the timeout, which under TCG is minutes.
 */
const FAILURES: ReadonlyArray<{reason: BootFailure; pattern: RegExp}> = [
  {reason: 'kernel-panic', pattern: /Kernel panic - not syncing/},
  // Debian/Ubuntu initramfs-tools: "ALERT!  /dev/sda1 does not exist.  Dropping to a shell!"; dracut says "Dropping to debug shell".
  {reason: 'initramfs-shell', pattern: /ALERT! |Dropping to (a|debug) shell/},
  // systemd ("You are in emergency mode", older sulogin "Give root password") and dracut ("Entering emergency mode").
  {reason: 'emergency-mode', pattern: /You are in emergency mode|Give root password for maintenance|Entering emergency mode/},
  // SeaBIOS and OVMF when no disk holds a boot loader they can start; OVMF then falls back to its UEFI shell.
  {reason: 'no-boot-device', pattern: /No bootable device|No bootable option or device was found|^Shell>\s*$/},
]

export interface LineVerdict {
  passed: boolean
  reason: BootReason
}

/** What one console line says about the boot, if anything. */
export function judgeLine(line: string, passPattern: RegExp | undefined): LineVerdict | undefined {
  for (const failure of FAILURES) if (failure.pattern.test(line)) return {passed: false, reason: failure.reason}
  if (passPattern) return passPattern.test(line) ? {passed: true, reason: 'pattern'} : undefined
  return LOGIN_PROMPT.test(line) ? {passed: true, reason: 'login-prompt'} : undefined
}
