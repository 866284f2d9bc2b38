import {H2KError} from '@hyper2kvm/plugin-api'

/** The opaque page cursor of JobStore.jobsPage: the last row's created_at and rowid, base64url JSON. */
export const encodeCursor = (at: {createdAt: string; rowid: number}): string => Buffer.from(JSON.stringify([at.createdAt, at.rowid])).toString('base64url')

export function decodeCursor(cursor: string): {createdAt: string; rowid: number} {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && Number.isInteger(value[1])) return {createdAt: value[0], rowid: value[1] as number}
  } catch {
    // Not JSON: refused below like any other malformed cursor.
  }
  throw new H2KError('H2K_USAGE', 'The cursor is not one this store handed out (pass nextCursor of the previous page unchanged).')
}

