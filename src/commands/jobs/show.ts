import {Args} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {type ApiJobDetail, detailLines} from '../../api-client/job-detail.js'
import {BaseCommand} from '../../base-command.js'

export default class JobsShow extends BaseCommand<typeof JobsShow> {
  static override args = {id: Args.string({description: 'Job id (or a unique prefix of it)', required: true})}
  static override description = 'Asks the daemon\'s REST API (GET /api/v1/jobs/{id}): the job, its history (one row per status change), its attempts, what it depends on and what depends on it, and its report once it succeeded (--json has all of it).'
  static override examples = ['<%= config.bin %> <%= command.id %> 3f9c2a1b', '<%= config.bin %> <%= command.id %> 3f9c2a1b --json']
  static override flags = {...apiFlags}
  static override summary = 'Show one job with its history, attempts and report.'

  public async run(): Promise<ApiJobDetail> {
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const detail = (await apiRequest('GET', `/api/v1/jobs/${encodeURIComponent(this.args.id)}`)) as ApiJobDetail
    if (!this.jsonEnabled()) for (const line of detailLines(detail)) this.log(line)
    return detail
  }
}
