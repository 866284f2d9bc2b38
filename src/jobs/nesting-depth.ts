import {Lexer} from 'yaml'

/** Deeper than any job file, manifest or config needs; a document nesting deeper is refused before it is built. */
export const MAX_NESTING_DEPTH = 64

/** Markers the yaml lexer emits that take no room in the source. */
const ZERO_WIDTH = new Set(['\u0002', '\u0018', '\u001F', '\u{FEFF}'])

/**
 * The first line at which `text` (YAML or JSON) nests deeper than `limit`, or undefined. Runs the yaml
 * lexer only (a flat token stream, no tree): flow collections count their brackets, block collections
 * their indentation columns (a `- - -` compact sequence counts each indicator). An upper bound of the
 * depth the parser would build, computed in one linear pass that stops at the first excess.
 */
export function excessNesting(text: string, limit = MAX_NESTING_DEPTH): {line: number} | undefined {
  let line = 1
  let column = 0
  let flow = 0
  /** Columns of the open block collections (strictly increasing). */
  const block: number[] = []
  /** Whether the next content token starts a block node (start of line, or after a `-`/`?`/`:` indicator). */
  let nodeStart = true
  for (const token of new Lexer().lex(text, false)) {
    if (ZERO_WIDTH.has(token)) continue
    const first = token[0]
    const atColumn = column
    const newlines = countNewlines(token)
    if (newlines > 0) {
      line += newlines
      column = token.length - token.lastIndexOf('\n') - 1
    } else column += token.length
    if (token === '\n' || token === '\r\n') {
      nodeStart = true
      continue
    }
    if (first === ' ' || first === '\t' || first === '#') continue
    if (token === '[' || token === '{') flow++
    else if (token === ']' || token === '}') flow = Math.max(0, flow - 1)
    if (flow === 0 && nodeStart) {
      while (block.length > 0 && block.at(-1)! > atColumn) block.pop()
      if (block.length === 0 || block.at(-1)! < atColumn) block.push(atColumn)
    }
    nodeStart = flow === 0 && (token === '-' || token === '?' || token === ':')
    if (block.length + flow > limit) return {line}
  }
  return undefined
}

function countNewlines(token: string): number {
  let n = 0
  for (let i = token.indexOf('\n'); i !== -1; i = token.indexOf('\n', i + 1)) n++
  return n
}
