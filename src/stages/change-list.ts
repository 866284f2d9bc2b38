import type {ChangeRecorder, FileChange} from '@hyper2kvm/plugin-api'

/** Every guest file a fixer changed, in order, for the report. */
export class ChangeList implements ChangeRecorder {
  private readonly changes: FileChange[] = []

  get all(): readonly FileChange[] {
    return this.changes
  }

  record(change: FileChange): void {
    this.changes.push({...change})
  }
}
