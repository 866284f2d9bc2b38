/**
 * The OS keychain (service `hyper2kvm`, account = the secret's dotted name) through @napi-rs/keyring:
 * macOS Keychain, Windows Credential Manager, the Secret Service (GNOME Keyring, KWallet) on Linux.
 *
 * Every call runs in a short-lived child process bounded by a timeout and killed when it overruns. A Linux
 * machine without a D-Bus session bus (a headless server, a systemd service) has no Secret Service: that is
 * known without starting anything, and once the keychain failed, this process does not ask it again.
 */
import {execa} from 'execa'
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {H2KError} from '@hyper2kvm/plugin-api'
import type {KeychainAnswer, KeychainRequest} from './keychain-protocol.js'
import {KEYCHAIN_SERVICE} from './secret-names.js'

/** A keychain that has not answered by then is treated as unavailable (an unlocked one answers in ~100 ms). */
export const KEYCHAIN_TIMEOUT_MS = 5000
/** At a terminal, the keyring may show an unlock prompt: give the user time to answer it. */
export const KEYCHAIN_INTERACTIVE_TIMEOUT_MS = 120_000

const FROM_SOURCE = import.meta.url.endsWith('.ts')
const CHILD = fileURLToPath(new URL(`keychain-child${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url))

/** Why the keychain cannot be used in this process, once known, per session bus address (another bus may work). */
const unavailable = new Map<string, string>()
const busKey = (env: NodeJS.ProcessEnv): string => env.DBUS_SESSION_BUS_ADDRESS ?? ''

export class KeychainUnavailable extends H2KError {
  constructor(reason: string) {
    super('H2K_SECRET_UNAVAILABLE', `The OS keychain cannot be used: ${reason}.`, {
      details: {reason},
      suggestions: [
        'On a server, give secrets to the daemon as systemd credentials (LoadCredential=notifications.smtp_password:/etc/hyper2kvm/smtp-password in its unit) or as a 0600 file named by the `*_file` key (e.g. smtp_password_file).',
        'For a desktop keychain, run this in a session with a D-Bus session bus and an unlocked Secret Service (GNOME Keyring, KWallet).',
      ],
    })
  }
}

/** The keychain timeout for a command: long at a terminal (someone can answer an unlock prompt), short otherwise. */
export function keychainTimeoutFor(interactive: boolean = process.stdin.isTTY === true && process.stderr.isTTY === true): number {
  return interactive ? KEYCHAIN_INTERACTIVE_TIMEOUT_MS : KEYCHAIN_TIMEOUT_MS
}

/** Linux without a session bus to reach: no Secret Service can answer (checked without starting anything). */
function missingBus(env: NodeJS.ProcessEnv): string | undefined {
  if (process.platform !== 'linux') return undefined
  if (env.DBUS_SESSION_BUS_ADDRESS) return undefined
  const runtime = env.XDG_RUNTIME_DIR ?? `/run/user/${process.getuid?.() ?? 0}`
  if (existsSync(join(runtime, 'bus'))) return undefined
  return 'no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set and there is no $XDG_RUNTIME_DIR/bus), so no Secret Service'
}

/** Whether the keychain is already known to be unavailable in this process (and why). */
export function keychainUnavailableReason(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return unavailable.get(busKey(env)) ?? missingBus(env)
}

async function ask(request: KeychainRequest, options: {env?: NodeJS.ProcessEnv; timeoutMs?: number} = {}): Promise<KeychainAnswer & {ok: true}> {
  const env = options.env ?? process.env
  const known = keychainUnavailableReason(env)
  if (known !== undefined) throw new KeychainUnavailable(known)
  const timeoutMs = options.timeoutMs ?? KEYCHAIN_TIMEOUT_MS
  const argv = FROM_SOURCE ? ['--import', import.meta.resolve('tsx'), CHILD] : [CHILD]
  const result = await execa(process.execPath, argv, {
    env,
    extendEnv: false,
    input: JSON.stringify(request),
    killSignal: 'SIGKILL',
    reject: false,
    stripFinalNewline: false,
    timeout: timeoutMs,
  })
  let reason: string
  if (result.timedOut) {
    reason = `it did not answer within ${timeoutMs / 1000} s (a locked keyring waiting for a prompt?)`
  } else {
    let parsed: KeychainAnswer | undefined
    try {
      parsed = JSON.parse(result.stdout) as KeychainAnswer
    } catch {
      parsed = undefined
    }
    if (parsed?.ok) return parsed
    reason = parsed ? parsed.message : `its helper process failed (exit ${result.exitCode ?? result.signal})`
  }
  unavailable.set(busKey(env), reason)
  throw new KeychainUnavailable(reason)
}

/** The stored values of these names (null: no entry). Throws KeychainUnavailable. */
export async function keychainGet(names: readonly string[], options?: {env?: NodeJS.ProcessEnv; timeoutMs?: number}): Promise<Record<string, string | null>> {
  const answer = await ask({names: [...names], op: 'get', service: KEYCHAIN_SERVICE}, options)
  return answer.values ?? {}
}

/** Store a value (replacing any). Throws KeychainUnavailable. */
export async function keychainSet(name: string, value: string, options?: {env?: NodeJS.ProcessEnv; timeoutMs?: number}): Promise<void> {
  await ask({name, op: 'set', service: KEYCHAIN_SERVICE, value}, options)
}

/** Remove an entry; false when there was none. Throws KeychainUnavailable. */
export async function keychainDelete(name: string, options?: {env?: NodeJS.ProcessEnv; timeoutMs?: number}): Promise<boolean> {
  const answer = await ask({name, op: 'delete', service: KEYCHAIN_SERVICE}, options)
  return answer.deleted ?? false
}
