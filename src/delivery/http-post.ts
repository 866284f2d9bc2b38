import type {DeliveryOutcome} from './channel.js'

const VERSION_AGENT = 'hyper2kvm-webhook/1'

/** Retry-After as milliseconds (delta-seconds or an HTTP date), undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000
  const at = Date.parse(header)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/** Why a fetch failed, without the URL (its path may be a credential): undici puts the cause one level down. */
function networkReason(error: unknown, signal: AbortSignal): string {
  if (signal.aborted) {
    const reason = signal.reason as {name?: string; message?: string} | undefined
    return reason?.name === 'TimeoutError' ? 'timed out' : `aborted${reason?.message ? `: ${reason.message}` : ''}`
  }
  const cause = (error as {cause?: {code?: string; message?: string}}).cause
  // No cause: the request could not even be built, and that TypeError quotes the URL or a header value.
  return cause?.code ?? cause?.message ?? 'the request could not be built (check the URL and the headers)'
}

/**
 * POST one JSON body. 2xx is delivered; a redirect is not followed (a webhook that moved is a configuration
 * error); 408, 429 and 5xx are worth retrying (429/503 with their Retry-After); any other status is permanent.
 */
export async function postJson(url: string, body: string, headers: Record<string, string>, signal: AbortSignal): Promise<DeliveryOutcome> {
  let response: Response
  try {
    response = await fetch(url, {body, headers: {'Content-Type': 'application/json', 'User-Agent': VERSION_AGENT, ...headers}, method: 'POST', redirect: 'manual', signal})
  } catch (error) {
    return {ok: false, permanent: false, reason: networkReason(error, signal)}
  }
  // The body is not needed: discarded unread (a receiver streaming an endless body would otherwise be
  // buffered in the daemon's memory until the timeout). Its connection is not reused; notifications are rare.
  await response.body?.cancel().catch(() => undefined)
  const status = response.status
  if (status >= 200 && status < 300) return {detail: `HTTP ${status}`, ok: true}
  if (status >= 300 && status < 400) return {ok: false, permanent: true, reason: `HTTP ${status} redirect (not followed: point the URL at the final address)`}
  const after = retryAfterMs(response.headers.get('retry-after'))
  const retryable = status === 408 || status === 429 || status >= 500
  return {ok: false, permanent: !retryable, reason: `HTTP ${status}`, ...(retryable && after !== undefined ? {retryAfterMs: after} : {})}
}
