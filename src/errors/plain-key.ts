/**
 * Whether a key someone wrote (a document's, an option's) may be repeated in a message as written: only a plain
 * name. A document may be a stranger's (the daemon's drop directory), and its keys would reach error files,
 * logs and terminals as they are (escape sequences, a megabyte of text); messages say "a key of N characters"
 * or `…` for the others, and their line:column still says where.
 */
export function isPlainKey(key: string): boolean {
  return /^[\w.:-]{1,64}$/.test(key)
}
