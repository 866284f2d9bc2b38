import {Flags} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import type {ApiJob} from '../../api-client/job-table.js'
import {BaseCommand} from '../../base-command.js'
import {tableLines} from '../../ctl/job-table.js'

export default class DlqList extends BaseCommand<typeof DlqList> {
  static override description = 'Asks the daemon\'s REST API (GET /api/v1/dlq): the dead-letter queue, jobs whose retries were exhausted (status dead), newest first, with their last error; --cursor takes the next_cursor a page ended with.'
  static override examples = ['<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml', '<%= config.bin %> <%= command.id %> --url http://127.0.0.1:8080 --token-file /etc/hyper2kvm/api.token --limit 20 --json']
  static override flags = {
    ...apiFlags,
    cursor: Flags.string({description: 'Continue after the page that returned this next_cursor.'}),
    limit: Flags.integer({default: 50, description: 'At most this many jobs (1-500).', max: 500, min: 1}),
  }
  static override summary = 'List dead jobs (retries exhausted).'

  public async run(): Promise<{jobs: ApiJob[]; next_cursor: string | null}> {
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const query = new URLSearchParams({limit: String(this.flags.limit), ...(this.flags.cursor ? {cursor: this.flags.cursor} : {})})
    const page = (await apiRequest('GET', `/api/v1/dlq?${query}`)) as {jobs: ApiJob[]; next_cursor: string | null}
    if (!this.jsonEnabled()) {
      if (page.jobs.length === 0) this.log('The dead-letter queue is empty.')
      else for (const line of tableLines(['ID', 'ATTEMPTS', 'DIED', 'NAME', 'ERROR'], page.jobs.map((j) => [j.id, String(j.attempts), j.completed_at ?? '-', j.name, j.error?.code ?? '-']))) this.log(line)
      if (page.next_cursor) this.logToStderr(`more: --cursor ${page.next_cursor}`)
    }
    return page
  }
}
