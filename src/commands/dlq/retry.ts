import {Args} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {outputDirFlag} from '../../ctl/daemon-flags.js'
import {DLQ_STORE_NOTE, openDlqStore} from '../../ctl/dlq-store.js'
import {offlineJobService} from '../../service/offline-job-service.js'

export default class DlqRetry extends BaseCommand<typeof DlqRetry> {
  static override args = {id: Args.string({description: 'Job id (or a unique prefix of it)', required: true})}
  static override description = `Puts a dead job back in the queue with a fresh attempt count (its earlier attempts stay recorded) — a failed, cancelled or skipped one too — together with the jobs that were skipped because of it, transitively. Its input must still be where the job reads it (a dropped file that moved on to failed/ must be dropped again). ${DLQ_STORE_NOTE}`
  static override examples = ['<%= config.bin %> <%= command.id %> 3f9c2a1b --config /etc/hyper2kvm/daemon.yaml']
  static override flags = {...outputDirFlag}
  static override summary = 'Re-queue a dead (or failed) job and its skipped dependents.'

  public async run(): Promise<{queued: Array<{id: string; name: string}>}> {
    const store = await openDlqStore(this.flags, true)
    try {
      const rows = offlineJobService(store).retry(this.args.id)
      if (!this.jsonEnabled()) for (const r of rows) this.log(`queued ${r.id} (${r.name})`)
      return {queued: rows.map((r) => ({id: r.id, name: r.name}))}
    } finally {
      store.close()
    }
  }
}
