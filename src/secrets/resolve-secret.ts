/**
 * Secrets (SMTP password, webhook signing secret, the HTTP token, vsphere.password): where a value comes
 * from, and the registry that lets logs scrub a resolved value should one ever reach a message.
 *
 * Sources, first that has the secret wins:
 *   1. the OS keychain (service `hyper2kvm`, account = the name; `hyper2kvm secrets set NAME`);
 *   2. a systemd credential, `$CREDENTIALS_DIRECTORY/<name>` (the unit's `LoadCredential=<name>:<path>`);
 *   3. the `<key>_file` key: a regular file owned by this user or root, mode 0600/0400, at most 64 KiB;
 *   4. the environment, `HYPER2KVM_<NAME>` (dots → `_`, upper case);
 *   5. the plain value in the configuration: works, with a SECRET_IN_CONFIG warning naming the key.
 */
import {lstat} from 'node:fs/promises'
import {isAbsolute, join, resolve} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {keychainGet} from './keychain.js'
import {registerSecret} from './redact.js'
import {readSecretFile} from './secret-file.js'
import {isValidSecretName, secretEnvName} from './secret-names.js'

export {REDACTED, isSecretKey, redactConfig, redactSecrets, registerSecret} from './redact.js'
export {SECRET_NAMES, type SecretName, secretEnvName} from './secret-names.js'

export interface SecretRequest {
  /** Stable dotted name, e.g. `notifications.smtp_password`: keychain account, credential name, env var base. */
  name: string
  /** The plain value in the configuration (works, with a warning). */
  value?: string
  /** The `<key>_file` value: a file holding the secret. */
  file?: string
  /** Directory a relative `file` is relative to (the configuration file's); default: the working directory. */
  baseDir?: string
  /** The configuration file the plain value and `file` come from, for messages. */
  configFile?: string
}

export type SecretSource = 'keychain' | 'credential' | 'file' | 'env' | 'config'

/** The order sources are tried in. */
export const SECRET_SOURCES: readonly SecretSource[] = ['keychain', 'credential', 'file', 'env', 'config']

export interface ResolvedSecret {
  value: string
  source: SecretSource
  /** Where exactly, for humans, never the value: `keychain`, `credential /run/credentials/x/name`, `file /etc/…`, `env HYPER2KVM_…`, `config /etc/…yaml`. */
  origin?: string
}

/** A warning's machine-readable side: the event and the secret's name (never its value). */
export interface SecretNotice {
  code: 'SECRET_IN_CONFIG'
  name: string
}

export interface ResolveOptions {
  /** Debug-level notes (the keychain is unavailable, once per process). */
  debug?: (message: string) => void
  /** Environment to read HYPER2KVM_* and CREDENTIALS_DIRECTORY from (default process.env). */
  env?: NodeJS.ProcessEnv
  /** false: do not ask the OS keychain. */
  keychain?: boolean
  /** How long the keychain may take (default KEYCHAIN_TIMEOUT_MS; interactive commands allow time for an unlock prompt). */
  keychainTimeoutMs?: number
}

/** Per warn callback (one configuration load), the names already warned about: one warning per name and load. */
const warnedPlain = new WeakMap<object, Set<string>>()
let notedKeychain = false

/** The keychain's value, or undefined when it has none or cannot be used (noted at debug level, once). */
async function fromKeychain(name: string, options: ResolveOptions): Promise<string | undefined> {
  if (options.keychain === false) return undefined
  try {
    const stored = (await keychainGet([name], {env: options.env, timeoutMs: options.keychainTimeoutMs}))[name]
    return stored === null || stored === undefined || stored === '' ? undefined : stored
  } catch (error) {
    if (!(error instanceof H2KError) || error.code !== 'H2K_SECRET_UNAVAILABLE') throw error
    if (!notedKeychain) options.debug?.(`${error.message} Secrets come from systemd credentials, *_file keys, HYPER2KVM_* variables or the configuration.`)
    notedKeychain = true
    return undefined
  }
}

/** `$CREDENTIALS_DIRECTORY/<name>` when systemd passed it (a missing one is not an error: next source). */
async function fromCredential(name: string, env: NodeJS.ProcessEnv): Promise<{value: string; path: string} | undefined> {
  const dir = env.CREDENTIALS_DIRECTORY
  if (!dir) return undefined
  const path = join(dir, name)
  const present = await lstat(path).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false
      throw new H2KError('H2K_SECRET_UNAVAILABLE', `${name}: the systemd credential ${path} cannot be examined (${error.code ?? error.message}).`, {cause: error, details: {path, reason: 'unreadable', secret: name, source: 'credential'}})
    },
  )
  if (!present) return undefined
  // systemd creates it read-only for the service's user; still no symlink, no special file, bounded size.
  return {path, value: await readSecretFile(path, {source: 'credential', strict: false, what: `${name} (systemd credential)`})}
}

/**
 * The secret's value from the first source that has it, or undefined when none has. A `*_file` that is
 * unsafe or missing, once reached, is an error (H2K_SECRET_UNSAFE / H2K_SECRET_UNAVAILABLE), never skipped.
 * A plain value in the configuration is warned about (once per name and `warn` callback, i.e. per
 * configuration load) even when a source before
 * it wins: it is still sitting in the file.
 */
export async function resolveSecret(request: SecretRequest, warn: (message: string, notice?: SecretNotice) => void, options: ResolveOptions = {}): Promise<ResolvedSecret | undefined> {
  const {name} = request
  if (!isValidSecretName(name)) throw new H2KError('H2K_INTERNAL', `Invalid secret name "${name}".`)
  const env = options.env ?? process.env
  const plain = request.value !== undefined && request.value !== '' ? request.value : undefined
  if (plain !== undefined) {
    registerSecret(plain)
    const warned = warnedPlain.get(warn) ?? new Set<string>()
    warnedPlain.set(warn, warned)
    if (!warned.has(name)) {
      warned.add(name)
      warn(
        `SECRET_IN_CONFIG: ${name} is written in plain text in the configuration${request.configFile ? ` (${request.configFile})` : ''}; move it to the keychain (hyper2kvm secrets set ${name}), a systemd credential, ${name.split('.').at(-1)}_file or ${secretEnvName(name)}.`,
        {code: 'SECRET_IN_CONFIG', name},
      )
    }
  }
  const found = (value: string, source: SecretSource, origin: string): ResolvedSecret => {
    registerSecret(value)
    return {origin, source, value}
  }

  const keychain = await fromKeychain(name, options)
  if (keychain !== undefined) return found(keychain, 'keychain', 'keychain')

  const credential = await fromCredential(name, env)
  if (credential !== undefined) return found(credential.value, 'credential', `credential ${credential.path}`)

  if (request.file !== undefined && request.file !== '') {
    const path = isAbsolute(request.file) ? request.file : resolve(request.baseDir ?? process.cwd(), request.file)
    const value = await readSecretFile(path, {source: 'file', strict: true, what: `${name}_file`})
    return found(value, 'file', `file ${path}`)
  }

  const fromEnv = env[secretEnvName(name)]
  if (fromEnv !== undefined && fromEnv !== '') return found(fromEnv, 'env', `env ${secretEnvName(name)}`)

  if (plain !== undefined) return found(plain, 'config', request.configFile ? `config ${request.configFile}` : 'config')
  return undefined
}
