/**
 * The secrets hyper2kvm knows by name. A name is the secret's dotted configuration key: it is the keychain
 * account (service `hyper2kvm`), the systemd credential's file name, and the base of its environment
 * variable; the configuration holds it as that key or as `<key>_file`.
 */
import {H2KError} from '@hyper2kvm/plugin-api'

/** Every secret the configuration schema knows (`secrets list` shows these). */
export const SECRET_NAMES = ['notifications.smtp_password', 'notifications.webhook_secret', 'metrics.token', 'api.token', 'vsphere.password', 'store.password'] as const
export type SecretName = (typeof SECRET_NAMES)[number]

/** The keychain service every entry is stored under. */
export const KEYCHAIN_SERVICE = 'hyper2kvm'

const NAME = /^[a-z][a-z0-9_]*(\.[a-z0-9][a-z0-9_]*)+$/

/** A dotted lower-case name (`section.key`): safe as a file name inside $CREDENTIALS_DIRECTORY. */
export function isValidSecretName(name: string): boolean {
  return name.length <= 128 && NAME.test(name)
}

export function assertSecretName(name: string): void {
  if (!isValidSecretName(name)) {
    throw new H2KError('H2K_USAGE', `"${name}" is not a secret name: a dotted lower-case configuration key such as notifications.smtp_password.`, {
      suggestions: [`Known secrets: ${SECRET_NAMES.join(', ')}.`],
    })
  }
}

/** `notifications.smtp_password` → `HYPER2KVM_NOTIFICATIONS_SMTP_PASSWORD`. */
export function secretEnvName(name: string): string {
  return `HYPER2KVM_${name.replaceAll('.', '_').toUpperCase()}`
}

/** Where the secret sits in a configuration object: the section path and the key (`<key>_file` beside it). */
export function secretConfigPath(name: string): {section: string[]; key: string} {
  const parts = name.split('.')
  return {key: parts.at(-1)!, section: parts.slice(0, -1)}
}
