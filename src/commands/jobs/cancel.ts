import {Args, Flags} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import type {ApiJob} from '../../api-client/job-table.js'
import {BaseCommand} from '../../base-command.js'

export default class JobsCancel extends BaseCommand<typeof JobsCancel> {
  static override args = {id: Args.string({description: 'Job id (or a unique prefix of it)', required: true})}
  static override description = 'Through the daemon\'s REST API (POST /api/v1/jobs/{id}/cancel): a queued or waiting job is cancelled at once, a running one is aborted (its partial output removed), then cancelled; jobs depending on it are skipped. A finished job is refused (H2K_JOB_STATE).'
  static override examples = ['<%= config.bin %> <%= command.id %> 3f9c2a1b --reason "maintenance window moved"']
  static override flags = {...apiFlags, reason: Flags.string({description: 'Why (recorded in the job\'s history).'})}
  static override summary = 'Cancel a job.'

  public async run(): Promise<{job: ApiJob}> {
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const result = (await apiRequest('POST', `/api/v1/jobs/${encodeURIComponent(this.args.id)}/cancel`, this.flags.reason === undefined ? undefined : {reason: this.flags.reason})) as {job: ApiJob}
    if (!this.jsonEnabled()) this.log(`${result.job.id} ${result.job.status === 'running' ? 'is being cancelled' : result.job.status}`)
    return result
  }
}
