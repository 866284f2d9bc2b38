import type {IncomingMessage} from 'node:http'
import {isIP} from 'node:net'

/**
 * What a listener refuses of browsers: `host` — a Host header that is not an IP literal or `localhost`
 * (DNS rebinding: a page whose name resolves to 127.0.0.1 is same-origin with the listener; checked only on a
 * listener without a token, the one such a page could use); `full` — also a cross-site request (an Origin that
 * is not the listener's own, Sec-Fetch-Site other than same-origin/none) and a state-changing request without
 * `Content-Type: application/json` (which a browser cannot send cross-site without a preflight, and a
 * preflight — OPTIONS — is answered 405).
 */
export type BrowserGuard = 'host' | 'full'

const STATE_CHANGING = new Set(['DELETE', 'PATCH', 'POST', 'PUT'])

/** Why the request is refused (403; 415 for the Content-Type), or undefined. Messages never quote the headers. */
export function browserRefusal(req: IncomingMessage, guard: BrowserGuard, checkHost: boolean): {status: 403 | 415; message: string} | undefined {
  const message = refusal(req, guard, checkHost)
  if (message === undefined) return undefined
  return {message, status: message.includes('Content-Type') ? 415 : 403}
}

function refusal(req: IncomingMessage, guard: BrowserGuard, checkHost: boolean): string | undefined {
  const host = req.headers.host
  if (checkHost && host !== undefined && !localHost(host)) return 'The Host header must name this listener by an IP address or localhost (requests through other names are refused: DNS rebinding).'
  if (guard === 'host') return undefined
  const origin = req.headers.origin
  if (origin !== undefined && (host === undefined || origin.toLowerCase() !== `http://${host.toLowerCase()}`)) return 'Cross-origin requests are refused (the Origin header is not this listener).'
  const site = req.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return 'Cross-site requests are refused (Sec-Fetch-Site).'
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (STATE_CHANGING.has(req.method ?? '') && type !== 'application/json') return `${req.method} requests need a JSON Content-Type (application/json), with or without a body (a browser cannot send it cross-site unasked).`
  return undefined
}

/** An IP literal (with or without port, IPv6 in brackets) or localhost. */
function localHost(header: string): boolean {
  const name = header.startsWith('[') ? header.slice(1, header.indexOf(']')) : header.replace(/:\d*$/, '')
  return isIP(name) !== 0 || name.toLowerCase() === 'localhost'
}
