import {ADDED_BY} from './initramfs-drivers.js'
import {lineEdits} from './line-edits.js'
import {appendLines, dominantEol, joinLines, splitLines} from './text-lines.js'
import type {TransformResult} from './transform-result.js'

export interface ShellListOptions {
  /** How a new assignment is written when the file has none: a bash array `NAME=(...)` or a string `NAME="..."`. */
  syntax: 'array' | 'string'
  /** Two spellings that name the same item (module names: '-' and '_') map to the same key. */
  keyOf?: (item: string) => string
  /** The file, for warnings. */
  what: string
  /** The reason recorded on each changed line. */
  reason: string
}

interface ValueSpan {
  /** Offset of the first character inside the brackets or quotes (or of a bare word). */
  start: number
  end: number
  kind: '(' | '"' | "'" | ''
}

/** Where NAME's value ends, scanning on from `open` across lines (a bash array or a quoted string may span lines). */
function valueSpan(text: string, open: number): ValueSpan | undefined {
  const first = text[open]
  if (first === '(' || first === '"' || first === "'") {
    const close = first === '(' ? ')' : first
    let quote = ''
    for (let index = open + 1; index < text.length; index++) {
      const char = text[index]
      if (char === '\\' && quote !== "'" && first !== "'") index++
      else if (first === '(' && quote !== '' && char === quote) quote = ''
      else if (first === '(' && quote === '' && (char === '"' || char === "'")) quote = char
      else if (quote === '' && char === close) return {start: open + 1, end: index, kind: first}
    }
    return undefined
  }
  const bare = /^[^\s#;]*/.exec(text.slice(open))?.[0] ?? ''
  return {start: open, end: open + bare.length, kind: ''}
}

/** Offset just after `NAME=` of the last assignment outside comments, as the shell would end up using it. */
function lastAssignment(text: string, name: string): number | undefined {
  let found: number | undefined
  let offset = 0
  for (const line of splitLines(text)) {
    const head = new RegExp(`^\\s*(?:export\\s+)?${name}=`).exec(line.body)
    if (head) found = offset + head[0].length
    offset += line.body.length + line.eol.length
  }
  return found
}

/**
 * Make the shell list variable NAME (a bash array or a blank-separated string) of a sourced config file contain
 * `items`, appending the missing ones after the existing ones in the syntax the file already uses. When the file
 * never assigns NAME, an assignment is appended under a marker comment. Text around the value is untouched.
 */
export function ensureShellListItems(text: string, name: string, items: readonly string[], options: ShellListOptions): TransformResult {
  const keyOf = options.keyOf ?? ((item: string) => item)
  const open = lastAssignment(text, name)
  if (open === undefined) {
    const value = options.syntax === 'array' ? `(${items.join(' ')})` : `"${items.join(' ')}"`
    if (items.length === 0) return {text, edits: [], warnings: []}
    const lines = splitLines(text)
    appendLines(lines, [ADDED_BY, `${name}=${value}`], dominantEol(text))
    const after = joinLines(lines)
    return {text: after, edits: lineEdits(text, after, options.reason), warnings: []}
  }
  const span = valueSpan(text, open)
  if (!span) return {text, edits: [], warnings: [`${options.what}: the value of ${name} is not closed; left as is.`]}
  const inner = text.slice(span.start, span.end)
  const present = new Set(inner.split(/\s+/).map((item) => keyOf(item.replace(/^["']|["']$/g, ''))))
  const missing = items.filter((item) => !present.has(keyOf(item)))
  if (missing.length === 0) return {text, edits: [], warnings: []}
  const body = inner.trimEnd()
  const grown = `${body}${body === '' ? '' : ' '}${missing.join(' ')}${inner.slice(body.length)}`
  // A bare word (NAME=ext4, or NAME= with nothing) cannot hold blanks: quote it in the file's syntax.
  const value = span.kind !== '' ? grown : options.syntax === 'array' ? `(${grown})` : `"${grown}"`
  const after = text.slice(0, span.start) + value + text.slice(span.end)
  return {text: after, edits: lineEdits(text, after, options.reason), warnings: []}
}
