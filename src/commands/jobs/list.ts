import {Flags} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {type ApiJob, jobTable} from '../../api-client/job-table.js'
import {BaseCommand} from '../../base-command.js'

export default class JobsList extends BaseCommand<typeof JobsList> {
  static override description = 'Asks the daemon\'s REST API (GET /api/v1/jobs), newest first, one page at a time: --cursor takes the next_cursor a page ended with (shown on stderr), --all follows every page.'
  static override examples = ['<%= config.bin %> <%= command.id %> --status failed', '<%= config.bin %> <%= command.id %> --url http://127.0.0.1:8080 --token-file /etc/hyper2kvm/api.token --json']
  static override flags = {
    ...apiFlags,
    status: Flags.option({description: 'Only jobs with this status.', options: ['queued', 'running', 'retry_wait', 'succeeded', 'failed', 'duplicate', 'cancelled', 'dead', 'skipped'] as const})(),
    limit: Flags.integer({default: 50, description: 'Jobs per page (1-500).', max: 500, min: 1}),
    cursor: Flags.string({description: 'Start after this page (the next_cursor of the previous one).'}),
    all: Flags.boolean({default: false, description: 'Follow next_cursor to the last page.'}),
  }

  static override summary = 'List the daemon\'s jobs through its API.'

  public async run(): Promise<{jobs: ApiJob[]; next_cursor: string | null}> {
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const jobs: ApiJob[] = []
    let cursor = this.flags.cursor ?? null
    let next: string | null
    do {
      const query = new URLSearchParams({limit: String(this.flags.limit), ...(this.flags.status ? {status: this.flags.status} : {}), ...(cursor ? {cursor} : {})})
      const page = (await apiRequest('GET', `/api/v1/jobs?${query}`)) as {jobs: ApiJob[]; next_cursor: string | null}
      jobs.push(...page.jobs)
      next = page.next_cursor
      cursor = next
    } while (this.flags.all && next !== null)
    if (!this.jsonEnabled()) {
      for (const line of jobTable(jobs)) this.log(line)
      if (next !== null) this.logToStderr(`more: --cursor ${next}`)
    }
    return {jobs, next_cursor: next}
  }
}
