import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {outputDirFlag} from '../../ctl/daemon-flags.js'
import {DLQ_STORE_NOTE, openDlqStore} from '../../ctl/dlq-store.js'
import type {JobRow} from '../../daemon/store.js'
import {errorCodeOf, tableLines} from '../../ctl/job-table.js'
import {offlineJobService} from '../../service/offline-job-service.js'

export default class DlqList extends BaseCommand<typeof DlqList> {
  static override description = `The dead-letter queue: jobs whose retries were exhausted (status dead), newest first, with their last error. ${DLQ_STORE_NOTE}`
  static override examples = ['<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml', '<%= config.bin %> <%= command.id %> --output-dir /var/lib/hyper2kvm/output --limit 20 --json']
  static override flags = {
    ...outputDirFlag,
    cursor: Flags.string({description: 'Continue after the page that returned this next_cursor.'}),
    limit: Flags.integer({default: 50, description: 'At most this many jobs (1-500).', max: 500, min: 1}),
  }
  static override summary = 'List dead jobs (retries exhausted).'

  public async run(): Promise<{jobs: Array<Omit<JobRow, 'definition_json' | 'result_json' | 'progress_json'>>; next_cursor: string | null}> {
    const store = await openDlqStore(this.flags, false)
    try {
      const page = offlineJobService(store).dead({limit: this.flags.limit, ...(this.flags.cursor ? {cursor: this.flags.cursor} : {})})
      const jobs = page.jobs.map(({definition_json: _d, progress_json: _p, result_json: _r, ...row}) => row)
      if (!this.jsonEnabled()) {
        if (jobs.length === 0) this.log('The dead-letter queue is empty.')
        else for (const line of tableLines(['ID', 'ATTEMPTS', 'DIED', 'NAME', 'ERROR'], jobs.map((j) => [j.id, String(j.attempts), j.completed_at ?? '-', j.name, errorCodeOf(j)]))) this.log(line)
        if (page.nextCursor) this.log(`more: --cursor ${page.nextCursor}`)
      }
      return {jobs, next_cursor: page.nextCursor}
    } finally {
      store.close()
    }
  }
}
