import {join} from 'node:path'

import {ChildRecords} from '../exec/child-records.js'

/** Where a daemon records the children that detach from it (the libguestfs appliance): state_dir/children/. */
export const childRecordsOf = (stateDirectory: string): ChildRecords => new ChildRecords(join(stateDirectory, 'children'))

type Log = (level: 'warn' | 'info', event: string, fields: Record<string, unknown>, message: string) => void

/**
 * Crash recovery, first step: whatever an earlier instance recorded and left running (it was killed before
 * it could stop its appliance) is killed, before its jobs are re-queued and their directories removed. A
 * recorded pid that now belongs to another process is left alone.
 */
export async function reapLeftoverChildren(stateDirectory: string, log: Log): Promise<void> {
  for (const child of await childRecordsOf(stateDirectory).reap()) {
    const fields = {pid: child.pid, what: child.what, work_dir: child.work_dir}
    if (child.outcome === 'reaped') log('warn', 'child:reaped', fields, 'left running by an earlier instance: killed')
    else if (child.outcome === 'reused') log('info', 'child:not-ours', fields, 'its pid now belongs to another process: left alone')
    else if (child.outcome === 'invalid') log('warn', 'child:record-invalid', {}, 'an unreadable child record was removed')
  }
}
