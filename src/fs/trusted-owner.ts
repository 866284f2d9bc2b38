/**
 * Whether a file or directory belongs to this process's user or to root: the owners whose files we may write
 * into, read secrets from or log to. Another user's could be read, swapped or filled with forged content by
 * that user. (Where there are no user ids, every owner counts as trusted.)
 */
export function ownedByUsOrRoot(info: {uid: number}): boolean {
  const me = process.geteuid?.()
  return me === undefined || info.uid === me || info.uid === 0
}
