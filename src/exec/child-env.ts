/**
 * The environment a tool we start gets: ours, minus what only this process may hold. Secrets given as
 * HYPER2KVM_*_PASSWORD/_SECRET/_TOKEN variables, systemd's CREDENTIALS_DIRECTORY and its notify/watchdog
 * variables would otherwise reach qemu-img, guestfish and the libguestfs appliance's qemu — tools that parse
 * untrusted disks, and whose /proc/PID/environ any process of the same user can read.
 */
const SYSTEMD_ONLY = new Set(['CREDENTIALS_DIRECTORY', 'NOTIFY_SOCKET', 'WATCHDOG_PID', 'WATCHDOG_USEC'])
/** A secret's variable (secretEnvName): HYPER2KVM_NOTIFICATIONS_SMTP_PASSWORD, HYPER2KVM_METRICS_TOKEN … */
const SECRET_VARIABLE = /^HYPER2KVM_.*(PASSWORD|SECRET|TOKEN)/i

/** Whether a variable stays with this process (never passed to a child). */
export function isPrivateVariable(name: string): boolean {
  return SYSTEMD_ONLY.has(name) || SECRET_VARIABLE.test(name)
}

/** A child's complete environment (pass it with extendEnv: false): `base` without private variables, plus `extra`. */
export function childEnv(extra: Readonly<Record<string, string>> = {}, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(base)) if (value !== undefined && !isPrivateVariable(name)) env[name] = value
  return {...env, ...extra}
}
