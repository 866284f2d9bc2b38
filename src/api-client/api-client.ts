import {randomUUID} from 'node:crypto'

import {H2KError, isErrorCode} from '@hyper2kvm/plugin-api'
import {readSecretFile} from '../secrets/secret-file.js'
import {resolveSecret} from '../secrets/resolve-secret.js'

/** Where the API is and how to authenticate: from --url/--token-file, HYPER2KVM_API_TOKEN, or the `api:` of --config. */
export interface ApiTarget {
  /** Base URL, e.g. http://127.0.0.1:8080 (no trailing slash). */
  url: string
  token?: string
}

export interface ApiTargetFlags {
  url?: string
  'token-file'?: string
  config?: string
}

/** The default when neither --url nor --config says otherwise: the `api:` defaults. */
export const DEFAULT_API_URL = 'http://127.0.0.1:8080'
/** How long one request may take (a stream has no limit). */
const REQUEST_TIMEOUT_MS = 30_000

/** A wildcard bind address is reached through loopback. */
function hostOf(address: string): string {
  if (address === '0.0.0.0') return '127.0.0.1'
  if (address === '::' || address === '[::]') return '[::1]'
  return address.includes(':') && !address.startsWith('[') ? `[${address}]` : address
}

/**
 * The API target: --url, else the `api:` address and port of --config's daemon configuration, else
 * 127.0.0.1:8080; the token from --token-file, else the secret sources of `api.token` (keychain, systemd
 * credential, HYPER2KVM_API_TOKEN, the configuration's api.token_file / api.token).
 */
export async function resolveApiTarget(flags: ApiTargetFlags, env: NodeJS.ProcessEnv = process.env): Promise<ApiTarget> {
  let url = flags.url
  let tokenFile: string | undefined
  let tokenValue: string | undefined
  if (flags.config !== undefined) {
    const {loadDaemonConfig} = await import('../daemon/config.js')
    const api = (await loadDaemonConfig({config: flags.config})).api
    url ??= `http://${hostOf(api.address)}:${api.port}`
    tokenFile = api.tokenFile
    tokenValue = api.token
  }
  url ??= DEFAULT_API_URL
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new H2KError('H2K_USAGE', '--url must be an http:// or https:// URL, e.g. http://127.0.0.1:8080.')
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new H2KError('H2K_USAGE', '--url must be an http:// or https:// URL, e.g. http://127.0.0.1:8080.')
  let token: string | undefined
  if (flags['token-file'] !== undefined) token = await readSecretFile(flags['token-file'], {source: 'file', strict: true, what: '--token-file'})
  else token = (await resolveSecret({file: tokenFile, name: 'api.token', value: tokenValue}, () => {}, {env}))?.value
  return {url: `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`, ...(token ? {token} : {})}
}

/** An answer that is not 2xx, as an H2KError: the daemon's catalog code when it sent one. */
function refusal(status: number, body: unknown, requestId: string, retryAfter: string | null): H2KError {
  const error = (body as {error?: {code?: unknown; message?: unknown; request_id?: unknown; details?: unknown}} | undefined)?.error
  const message = typeof error?.message === 'string' ? error.message : `HTTP ${status}`
  const details = {request_id: typeof error?.request_id === 'string' ? error.request_id : requestId, status, ...(error?.details && typeof error.details === 'object' ? error.details : {})}
  if (isErrorCode(error?.code) && error.code !== 'H2K_INTERNAL') return new H2KError(error.code, message, {details})
  if (status === 401) return new H2KError('H2K_API_REFUSED', `${message} (the API wants a token: --token-file, HYPER2KVM_API_TOKEN or api.token in --config).`, {details})
  if (status === 429) return new H2KError('H2K_API_REFUSED', `${message}${retryAfter ? ` (Retry-After: ${retryAfter} s)` : ''}`, {details})
  if (status === 404) return new H2KError('H2K_USAGE', message, {details, suggestions: ['`hyper2kvm jobs list` shows the job ids.']})
  if (status < 500) return new H2KError('H2K_API_REFUSED', message, {details})
  return new H2KError('H2K_INTERNAL', `The daemon's API failed: ${message} (request ${details.request_id}; its log has the details).`, {details})
}

/** fetch(), with a failure to connect as H2K_DAEMON_NOT_RUNNING. */
async function send(target: ApiTarget, method: string, path: string, init: {body?: unknown; signal?: AbortSignal; accept?: string; headers?: Record<string, string>}): Promise<{response: Response; requestId: string}> {
  const requestId = `cli-${randomUUID()}`
  const headers: Record<string, string> = {Accept: init.accept ?? 'application/json', 'X-Request-Id': requestId, ...init.headers}
  if (target.token) headers.Authorization = `Bearer ${target.token}`
  // Every state-changing request says JSON, with or without a body: the API refuses it otherwise (browser-guard.ts).
  if (init.body !== undefined || method !== 'GET') headers['Content-Type'] = 'application/json'
  try {
    const response = await fetch(`${target.url}${path}`, {headers, method, ...(init.body === undefined ? {} : {body: JSON.stringify(init.body)}), ...(init.signal ? {signal: init.signal} : {})})
    return {requestId, response}
  } catch (error) {
    if ((error as Error).name === 'AbortError' || (error as Error).name === 'TimeoutError') throw new H2KError(init.signal?.aborted && (init.signal.reason as Error | undefined)?.name !== 'TimeoutError' ? 'H2K_CANCELLED' : 'H2K_DAEMON_TIMEOUT', `No answer from the daemon's API at ${target.url}.`, {cause: error})
    const code = ((error as {cause?: {code?: string}}).cause?.code ?? '') as string
    throw new H2KError('H2K_DAEMON_NOT_RUNNING', `No daemon API answers at ${target.url}${code ? ` (${code})` : ''}.`, {
      cause: error,
      suggestions: ['Start the daemon with `api: {enabled: true}` in its configuration, or pass its --url (or the --config it runs with).'],
    })
  }
}

/** One request to the API: the parsed JSON answer, or the refusal as an H2KError. */
export async function apiRequestTo(target: ApiTarget, method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<unknown> {
  const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS)
  const {requestId, response} = await send(target, method, path, {body, signal: signal ? AbortSignal.any([signal, timeout]) : timeout})
  const text = await response.text()
  let value: unknown
  try {
    value = text === '' ? undefined : (JSON.parse(text) as unknown)
  } catch {
    throw new H2KError('H2K_INTERNAL', `The API at ${target.url} answered ${response.status} with something that is not JSON (is --url the daemon's api: listener?).`)
  }
  if (!response.ok) throw refusal(response.status, value, requestId, response.headers.get('retry-after'))
  return value
}

/** A client bound to one target: `apiRequest(method, path, body?)` as the commands use it. */
export interface ApiClient {
  readonly target: ApiTarget
  apiRequest(method: string, path: string, body?: unknown): Promise<unknown>
  /** A streaming GET (server-sent events): its open Response, or the refusal. */
  openStream(path: string, signal: AbortSignal, lastEventId?: string): Promise<Response>
}

export async function apiClient(flags: ApiTargetFlags, signal?: AbortSignal): Promise<ApiClient> {
  const target = await resolveApiTarget(flags)
  return {
    apiRequest: (method, path, body) => apiRequestTo(target, method, path, body, signal),
    async openStream(path, streamSignal, lastEventId) {
      const {requestId, response} = await send(target, 'GET', path, {accept: 'text/event-stream', signal: streamSignal, ...(lastEventId ? {headers: {'Last-Event-ID': lastEventId}} : {})})
      if (!response.ok) {
        const text = await response.text()
        let value: unknown
        try {
          value = JSON.parse(text) as unknown
        } catch {
          value = undefined
        }
        throw refusal(response.status, value, requestId, response.headers.get('retry-after'))
      }
      return response
    },
    target,
  }
}
