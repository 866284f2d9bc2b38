/**
 * Where each secret currently comes from, without its value: for `secrets list`, `secrets get` and
 * `config show`. The keychain is asked once for all names.
 */
import {H2KError} from '@hyper2kvm/plugin-api'
import {keychainGet} from './keychain.js'
import {type ResolveOptions, type SecretNotice, type SecretRequest, type SecretSource, resolveSecret} from './resolve-secret.js'

export interface SecretStatus {
  name: string
  /** The source that provides it, or `none`. */
  source: SecretSource | 'none'
  /** Where exactly (a path, a variable), never the value. */
  origin?: string
  /** A source that has it but refused it (unsafe or missing `*_file`): its code and message. */
  error?: {code: string; message: string}
  /** Only when asked to reveal. */
  value?: string
}

export interface StatusReport {
  /** Why the keychain could not be asked, if it could not. */
  keychain_unavailable?: string
  secrets: SecretStatus[]
}

/** The status of every requested secret; `reveal` keeps the values (only `secrets get --reveal` asks). */
export async function secretStatus(
  requests: readonly SecretRequest[],
  warn: (message: string, notice?: SecretNotice) => void,
  options: ResolveOptions & {reveal?: boolean} = {},
): Promise<StatusReport> {
  let fromKeychain: Record<string, string | null> = {}
  let keychainUnavailable: string | undefined
  if (options.keychain === false) {
    keychainUnavailable = 'not asked'
  } else {
    try {
      fromKeychain = await keychainGet(
        requests.map((r) => r.name),
        {env: options.env, timeoutMs: options.keychainTimeoutMs},
      )
    } catch (error) {
      if (!(error instanceof H2KError) || error.code !== 'H2K_SECRET_UNAVAILABLE') throw error
      keychainUnavailable = String(error.details.reason ?? error.message)
      options.debug?.(error.message)
    }
  }
  const secrets: SecretStatus[] = []
  for (const request of requests) {
    const stored = fromKeychain[request.name] || undefined
    try {
      // The other sources still run (for a plain value's warning), but the keychain wins when it has it.
      const resolved = await resolveSecret(request, warn, {...options, keychain: false})
      if (stored !== undefined) secrets.push({name: request.name, origin: 'keychain', source: 'keychain', ...(options.reveal ? {value: stored} : {})})
      else if (resolved) secrets.push({name: request.name, origin: resolved.origin, source: resolved.source, ...(options.reveal ? {value: resolved.value} : {})})
      else secrets.push({name: request.name, source: 'none'})
    } catch (error) {
      if (!(error instanceof H2KError)) throw error
      if (stored !== undefined) secrets.push({name: request.name, origin: 'keychain', source: 'keychain', ...(options.reveal ? {value: stored} : {})})
      else secrets.push({error: {code: error.code, message: error.message}, name: request.name, origin: String(error.details.path ?? ''), source: error.details.source === 'credential' ? 'credential' : 'file'})
    }
  }
  return {keychain_unavailable: keychainUnavailable, secrets}
}
