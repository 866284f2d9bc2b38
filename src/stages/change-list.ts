import type {ChangeRecorder, FileChange, RecordedChange} from '@hyper2kvm/plugin-api'

import {diffChange} from './change-diff.js'

const text = (value: unknown): string | null => (typeof value === 'string' ? value : null)
const count = (value: unknown): number | null => (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : null)

/**
 * Every guest file a fixer changed, in order, for the report. The host derives each change's diff here, when
 * it is recorded, so every stage (a third party's too) gets one and none can bring its own: only the fields of
 * FileChange are taken from what a stage passes.
 */
export class ChangeList implements ChangeRecorder {
  private readonly changes: RecordedChange[] = []

  get all(): readonly RecordedChange[] {
    return this.changes
  }

  record(change: FileChange): void {
    const taken: FileChange = {after: text(change.after), before: text(change.before), path: String(change.path), stage: String(change.stage)}
    if (change.reason !== undefined) taken.reason = String(change.reason)
    if (change.bytes !== undefined && change.bytes !== null) taken.bytes = {after: count(change.bytes.after), before: count(change.bytes.before)}
    this.changes.push({...taken, ...diffChange(taken)})
  }
}
