import {Args} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {type ApiJob, jobTable} from '../../api-client/job-table.js'
import {BaseCommand} from '../../base-command.js'

export default class JobsRetry extends BaseCommand<typeof JobsRetry> {
  static override args = {id: Args.string({description: 'Job id (or a unique prefix of it)', required: true})}
  static override description = 'Through the daemon\'s REST API (POST /api/v1/jobs/{id}/retry): a failed, dead, cancelled or skipped job is queued again (its attempts start over), with the jobs that were skipped because of it.'
  static override examples = ['<%= config.bin %> <%= command.id %> 3f9c2a1b']
  static override flags = {...apiFlags}
  static override summary = 'Queue a finished job again.'

  public async run(): Promise<{jobs: ApiJob[]}> {
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const result = (await apiRequest('POST', `/api/v1/jobs/${encodeURIComponent(this.args.id)}/retry`)) as {jobs: ApiJob[]}
    if (!this.jsonEnabled()) for (const line of jobTable(result.jobs)) this.log(line)
    return result
  }
}
