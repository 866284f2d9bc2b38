import {createHmac} from 'node:crypto'

/**
 * The signature headers of a webhook body: the receiver recomputes HMAC-SHA256(secret, "<timestamp>.<body>")
 * and rejects old timestamps (replay) and mismatches (see the README, Notifications).
 */
export function signatureHeaders(secret: string, body: string, now = new Date()): Record<string, string> {
  const timestamp = String(Math.floor(now.getTime() / 1000))
  const digest = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')
  return {'X-Hyper2kvm-Signature': `sha256=${digest}`, 'X-Hyper2kvm-Timestamp': timestamp}
}
