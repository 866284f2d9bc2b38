import {createHash, timingSafeEqual} from 'node:crypto'
import {isIP} from 'node:net'

/** Whether an address to bind stays on this host: 127.0.0.0/8, ::1, `localhost`, or ::ffff:127.x. */
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[|\]$/g, '')
  if (a === 'localhost' || a === '::1' || a === '0:0:0:0:0:0:0:1') return true
  const v4 = a.startsWith('::ffff:') ? a.slice(7) : a
  return isIP(v4) === 4 && v4.startsWith('127.')
}

/**
 * Checks `Authorization: Bearer <token>` in constant time: both sides are hashed first, so neither the
 * comparison nor an early length mismatch tells how much of a guess was right.
 */
export class BearerToken {
  private readonly digest: Buffer

  constructor(token: string) {
    this.digest = createHash('sha256').update(token).digest()
  }

  accepts(authorization: string | undefined): boolean {
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization ?? '')
    const offered = createHash('sha256').update(match?.[1] ?? '').digest()
    return timingSafeEqual(offered, this.digest) && match !== null
  }
}
