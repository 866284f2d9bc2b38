import {Args} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {type ApiJob, jobTable} from '../../api-client/job-table.js'
import {BaseCommand} from '../../base-command.js'

export default class DlqRetry extends BaseCommand<typeof DlqRetry> {
  static override args = {id: Args.string({description: 'Dead job id (or a unique prefix of it)', required: true})}
  static override description = 'Through the daemon\'s REST API (POST /api/v1/dlq/{id}/retry): puts a dead job back in the queue with a fresh attempt count (its earlier attempts stay recorded), together with the jobs that were skipped because of it, transitively; the daemon starts it as soon as a worker is free and announces it (job.created on the event stream and to webhooks). Its input must still be where the job reads it (a dropped file that moved on to failed/ must be dropped again). A failed, cancelled or skipped job: `hyper2kvm jobs retry`.'
  static override examples = ['<%= config.bin %> <%= command.id %> 3f9c2a1b --config /etc/hyper2kvm/daemon.yaml']
  static override flags = {...apiFlags}
  static override summary = 'Re-queue a dead job and its skipped dependents.'

  public async run(): Promise<{jobs: ApiJob[]}> {
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const result = (await apiRequest('POST', `/api/v1/dlq/${encodeURIComponent(this.args.id)}/retry`)) as {jobs: ApiJob[]}
    if (!this.jsonEnabled()) for (const line of jobTable(result.jobs)) this.log(line)
    return result
  }
}
