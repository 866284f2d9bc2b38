import type {SecretStatus} from './secret-status.js'

/** Where a secret comes from, never its value: `set, from keychain`, `not set`, `refused (H2K_SECRET_UNSAFE): …`. */
export function describeSource(status: SecretStatus, keychainUnavailable?: string): string {
  if (status.error) return `refused (${status.error.code}): ${status.error.message}`
  if (status.source === 'none') return `not set${keychainUnavailable ? ` (keychain not available: ${keychainUnavailable})` : ''}`
  return `set, from ${status.origin ?? status.source}`
}
