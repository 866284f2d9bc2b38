/** A line of a guest file and the terminator it had ('' for a last line without one). */
export interface SourceLine {
  body: string
  eol: string
}

/**
 * Split text into lines that remember their own terminators, so joining them gives back the same bytes: a file
 * written on Windows keeps its CRLF and a file without a final newline stays without one.
 */
export function splitLines(text: string): SourceLine[] {
  const lines: SourceLine[] = []
  let start = 0
  while (start < text.length) {
    const newline = text.indexOf('\n', start)
    if (newline === -1) {
      lines.push({body: text.slice(start), eol: ''})
      break
    }
    const crlf = newline > start && text[newline - 1] === '\r'
    lines.push({body: text.slice(start, crlf ? newline - 1 : newline), eol: crlf ? '\r\n' : '\n'})
    start = newline + 1
  }
  return lines
}

export function joinLines(lines: readonly SourceLine[]): string {
  return lines.map((line) => line.body + line.eol).join('')
}

/** The line terminator to use for lines we add: CRLF if the file already uses it, else LF. */
export function dominantEol(text: string): string {
  const crlf = text.split('\r\n').length - 1
  const lf = text.split('\n').length - 1 - crlf
  return crlf > lf ? '\r\n' : '\n'
}

/**
 * Add lines at the end of a file. A last line without a terminator gets one (the file's own) so the added text
 * never glues onto it, and the missing final newline moves to the new last line: the file keeps its shape.
 */
export function appendLines(lines: SourceLine[], added: readonly string[], eol: string): void {
  const last = lines.at(-1)
  const unterminated = last !== undefined && last.eol === ''
  if (last && unterminated) last.eol = eol
  for (const body of added) lines.push({body, eol})
  const newLast = lines.at(-1)
  if (unterminated && newLast && added.length > 0) newLast.eol = ''
}
