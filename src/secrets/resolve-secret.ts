/**
 * Secrets (SMTP password, webhook signing secrets, the HTTP token, vsphere.password): where a value comes
 * from, and the registry that lets logs scrub a resolved value should one ever reach a message.
 *
 * STUB (to be completed by the secrets work): only the plain config value and a `*_file` are read here.
 */
import {readFile} from 'node:fs/promises'

export interface SecretRequest {
  /** Stable dotted name, e.g. `notifications.smtp_password`: keychain account, credential name, env var base. */
  name: string
  /** The plain value in the configuration (works, with a warning). */
  value?: string
  /** The `<key>_file` value: a file holding the secret. */
  file?: string
}

export type SecretSource = 'keychain' | 'credential' | 'file' | 'env' | 'config'

export interface ResolvedSecret {
  value: string
  source: SecretSource
}

const known = new Set<string>()

/** Remember a secret value so that `redactSecrets` removes it from any text. */
export function registerSecret(value: string): void {
  if (value.length >= 4) known.add(value)
}

/** Replace every registered secret value in `text` with `[REDACTED]`. */
export function redactSecrets(text: string): string {
  let out = text
  for (const value of known) out = out.split(value).join('[REDACTED]')
  return out
}

/** The secret's value from the first source that has it, or undefined when none has. */
export async function resolveSecret(request: SecretRequest, warn: (message: string) => void): Promise<ResolvedSecret | undefined> {
  if (request.file !== undefined) {
    const value = (await readFile(request.file, 'utf8')).replace(/\r?\n$/, '')
    registerSecret(value)
    return {source: 'file', value}
  }
  if (request.value !== undefined) {
    warn(`${request.name} is written in the configuration file in plain text`)
    registerSecret(request.value)
    return {source: 'config', value: request.value}
  }
  return undefined
}
