import type {RecordedChange} from '@hyper2kvm/plugin-api'

import {escapeControl} from './escape-control.js'

/**
 * One line per changed guest file, for a command's human output: `changed /etc/fstab  fixer:fstab  +2 -2`
 * (`would change` for a plan), or the change's note when it has no text diff (`binary: N bytes → M bytes`).
 * Paths and stage names are escaped: a guest's file name cannot move the cursor or forge a line.
 */
export function changeSummaryLine(change: RecordedChange, verb = 'changed'): string {
  const counts = change.diff === undefined ? (change.diffNote ?? 'no diff') : `+${change.linesAdded ?? 0} -${change.linesRemoved ?? 0}`
  return `${verb} ${escapeControl(change.path)}  ${escapeControl(change.stage)}  ${escapeControl(counts)}`
}

/**
 * A change as `inspect --plan` shows it: the summary line, why, then its unified diff, line by line with every
 * control character escaped (tabs kept) — the diff's text is the guest's, and the guest may be hostile.
 */
export function changeDiffLines(change: RecordedChange, verb = 'would change'): string[] {
  const lines = [changeSummaryLine(change, verb)]
  if (change.reason) lines.push(`  why: ${escapeControl(change.reason)}`)
  if (change.diff !== undefined) {
    const body = change.diff.endsWith('\n') ? change.diff.slice(0, -1) : change.diff
    for (const line of body.split('\n')) lines.push(escapeControl(line, {keepTab: true}))
  }
  return lines
}
