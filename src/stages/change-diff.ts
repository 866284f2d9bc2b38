import {FILE_HEADERS_ONLY, formatPatch, structuredPatch} from 'diff'

import type {FileChange, RecordedChange} from '@hyper2kvm/plugin-api'

/** A side larger than this (bytes of text) gets a size note instead of a diff: report.json stays readable. */
export const DIFF_TEXT_LIMIT = 256 * 1024
/** A side with more lines than this gets a note too (Myers' diff costs lines × differences). */
export const DIFF_LINE_LIMIT = 10_000
/**
 * Past this many inserted plus removed lines the change gets a note instead of a diff. With the line limit it
 * bounds the work (about 0.1 s at worst on one core) done synchronously when a change is recorded — the daemon's
 * event loop stays responsive — and, unlike a time budget, it decides the same way on every machine.
 */
export const DIFF_MAX_EDITS = 1000
const CONTEXT_LINES = 3

export type ChangeDiff = Pick<RecordedChange, 'diff' | 'diffNote' | 'linesAdded' | 'linesRemoved'>

const bytesOf = (text: string): number => Buffer.byteLength(text, 'utf8')
const size = (bytes: number | null | undefined): string => (bytes === null || bytes === undefined ? 'unknown' : `${bytes} bytes`)
/** What git calls binary: a NUL byte (guest files are read as UTF-8, so a NUL survives as U+0000). */
const isBinary = (text: string | null): boolean => text !== null && text.includes('\0')

const splitLines = (text: string | null): string[] => (text === null || text === '' ? [] : text.split('\n'))
const tooManyEdits = (before: number, after: number): ChangeDiff => ({diffNote: `too many differences for a diff (over ${DIFF_MAX_EDITS} changed lines): ${size(before)} → ${size(after)}`})

/**
 * A lower bound of the lines a diff must insert or remove, in linear time: every line of one side that the other
 * side does not have at all (counted with multiplicity). It turns "everything differs" away before Myers' diff
 * spends its whole budget finding that out.
 */
function editsAtLeast(before: readonly string[], after: readonly string[]): number {
  const pool = new Map<string, number>()
  for (const line of before) pool.set(line, (pool.get(line) ?? 0) + 1)
  let unmatched = 0
  for (const line of after) {
    const left = pool.get(line) ?? 0
    if (left > 0) pool.set(line, left - 1)
    else unmatched++
  }
  // Lines of `before` left over are removed; lines of `after` with no partner are inserted.
  return unmatched + (before.length - (after.length - unmatched))
}

/**
 * The unified diff of one recorded change, bounded: text that is binary or too large, or two texts too far
 * apart, get a one-line note instead. A path with control characters, quotes or non-ASCII bytes is C-quoted in
 * the headers as git does (`--- "a/etc/x\n…"`, which `patch` and `git apply` read), so a guest file name cannot
 * add lines to the diff; the content lines are the guest's bytes as they are (each prefixed by ' ', '+' or '-',
 * so none can pass for a header) — JSON escapes them, and a terminal sees them only through the renderer,
 * which escapes them.
 */
export function diffChange(change: Pick<FileChange, 'path' | 'before' | 'after' | 'bytes'>): ChangeDiff {
  const {after, before} = change
  if (before === null && after === null) {
    return {diffNote: change.bytes ? `binary: ${size(change.bytes.before)} → ${size(change.bytes.after)}` : 'no text recorded'}
  }
  if (isBinary(before) || isBinary(after)) {
    return {diffNote: `binary: ${size(before === null ? null : bytesOf(before))} → ${size(after === null ? null : bytesOf(after))}`}
  }
  const beforeBytes = before === null ? 0 : bytesOf(before)
  const afterBytes = after === null ? 0 : bytesOf(after)
  if (beforeBytes > DIFF_TEXT_LIMIT || afterBytes > DIFF_TEXT_LIMIT) {
    return {diffNote: `too large for a diff: ${size(before === null ? null : beforeBytes)} → ${size(after === null ? null : afterBytes)} (limit ${DIFF_TEXT_LIMIT} bytes)`}
  }
  const beforeLines = splitLines(before)
  const afterLines = splitLines(after)
  if (beforeLines.length > DIFF_LINE_LIMIT || afterLines.length > DIFF_LINE_LIMIT) {
    return {diffNote: `too large for a diff: ${beforeLines.length} lines → ${afterLines.length} lines (limit ${DIFF_LINE_LIMIT} lines)`}
  }
  if (editsAtLeast(beforeLines, afterLines) > DIFF_MAX_EDITS) return tooManyEdits(beforeBytes, afterBytes)
  const name = change.path.startsWith('/') ? change.path : `/${change.path}`
  const patch = structuredPatch(before === null ? '/dev/null' : `a${name}`, after === null ? '/dev/null' : `b${name}`, before ?? '', after ?? '', undefined, undefined, {
    context: CONTEXT_LINES,
    maxEditLength: DIFF_MAX_EDITS,
  })
  if (patch === undefined) return tooManyEdits(beforeBytes, afterBytes)
  if (patch.hunks.length === 0) {
    return {diffNote: before === null ? 'created, empty' : after === null ? 'deleted, was empty' : 'no difference in the text'}
  }
  let linesAdded = 0
  let linesRemoved = 0
  for (const hunk of patch.hunks) {
    for (const line of hunk.lines) {
      if (line.startsWith('+')) linesAdded++
      else if (line.startsWith('-')) linesRemoved++
    }
  }
  return {diff: formatPatch(patch, FILE_HEADERS_ONLY), linesAdded, linesRemoved}
}
