import {splitLines} from './text-lines.js'
import type {TextEdit} from './transform-result.js'

/**
 * The edits between two versions of a file whose changes kept the line structure (values grown in place) or only
 * added lines at the end: one edit per line whose text differs. Used by transforms that edit the file as one
 * string (a bash array may span lines).
 */
export function lineEdits(before: string, after: string, reason: string): TextEdit[] {
  const old = splitLines(before)
  const next = splitLines(after)
  const edits: TextEdit[] = []
  for (let index = 0; index < Math.max(old.length, next.length); index++) {
    const was = old[index]?.body ?? ''
    const now = next[index]?.body ?? ''
    if (was !== now || (old[index] === undefined) !== (next[index] === undefined)) edits.push({line: index + 1, before: was, after: now, reason})
  }
  return edits
}
