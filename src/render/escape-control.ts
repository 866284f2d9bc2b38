/**
 * Text from untrusted names (dropped file names, document values) made safe for one line of a log or a
 * table: every control character (newline, carriage return, escape sequences, DEL, C1) becomes a visible
 * `\n`, `\r`, `\t` or `\xNN` / `\u{…}`, so one event stays one line and no row can be forged. `keepTab`
 * leaves tabs as they are (harmless to a terminal, and the separator of fstab's columns in a diff).
 */
export function escapeControl(text: string, options: {keepTab?: boolean} = {}): string {
  return text.replace(/[\p{Cc}\u2028\u2029]/gu, (c) => {
    if (c === '\n') return '\\n'
    if (c === '\r') return '\\r'
    if (c === '\t') return options.keepTab ? c : '\\t'
    const code = c.codePointAt(0)!
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`
  })
}
