/** Where the value of a shell assignment `NAME=value` sits on a line, and how it was quoted. */
export interface ShellValue {
  /** The value without its quotes. */
  value: string
  /** Offset of the value's first character (after an opening quote). */
  start: number
  /** Offset just past the value's last character (before a closing quote). */
  end: number
  quote: '"' | "'" | ''
}

/**
 * Find the value of `NAME=...` on one line of a sourced shell file (/etc/default/grub, /etc/sysconfig/kernel,
 * mkinitcpio.conf). Accepts leading blanks and `export`; a double-quoted value may hold backslash escapes.
 * Returns undefined when the line does not assign NAME, or when a quote is not closed on the same line (a
 * multi-line value, which we leave alone rather than guess at).
 */
export function findShellValue(body: string, name: string): ShellValue | undefined {
  const head = new RegExp(`^\\s*(?:export\\s+)?${name}=`).exec(body)
  if (!head) return undefined
  const open = head[0].length
  const first = body[open]
  if (first === '"' || first === "'") {
    let index = open + 1
    while (index < body.length && body[index] !== first) index += first === '"' && body[index] === '\\' ? 2 : 1
    if (index >= body.length) return undefined
    return {value: body.slice(open + 1, index), start: open + 1, end: index, quote: first}
  }
  const bare = /^[^\s#;]*/.exec(body.slice(open))?.[0] ?? ''
  return {value: bare, start: open, end: open + bare.length, quote: ''}
}

/** Whether a line is a shell comment (or blank), which no assignment search should look into. */
export function isShellComment(body: string): boolean {
  const trimmed = body.trimStart()
  return trimmed === '' || trimmed.startsWith('#')
}
