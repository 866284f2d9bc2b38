import type {DeliveryMessage, DeliveryOutcome} from './channel.js'
import {postJson} from './http-post.js'
import {signatureHeaders} from './sign-webhook.js'

/** Where a webhook body goes: its URL, its custom headers, and its signing secret if it has one. */
export interface SignedTarget {
  url: string
  headers: Record<string, string>
  secret?: string
}

/**
 * One attempt at a webhook (notification or lifecycle): the target's custom headers, then ours —
 * X-Hyper2kvm-Delivery (the message id, the same on every retry) and X-Hyper2kvm-Event — and, with a
 * secret, the signature of exactly `body` (X-Hyper2kvm-Signature, X-Hyper2kvm-Timestamp). The one place
 * both kinds of webhook build their request, so they cannot drift apart.
 */
export function signedPost(target: SignedTarget, body: string, message: Pick<DeliveryMessage, 'event' | 'id'>, signal: AbortSignal): Promise<DeliveryOutcome> {
  const headers: Record<string, string> = {
    ...target.headers,
    'X-Hyper2kvm-Delivery': message.id,
    'X-Hyper2kvm-Event': message.event,
    ...(target.secret ? signatureHeaders(target.secret, body) : {}),
  }
  return postJson(target.url, body, headers, signal)
}
