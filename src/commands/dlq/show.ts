import {Args} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {type ApiJobDetail, detailLines} from '../../api-client/job-detail.js'
import {BaseCommand} from '../../base-command.js'

export default class DlqShow extends BaseCommand<typeof DlqShow> {
  static override args = {id: Args.string({description: 'Dead job id (or a unique prefix of it)', required: true})}
  static override description = 'Asks the daemon\'s REST API (GET /api/v1/dlq/{id}): one dead job with its last error, every attempt with its outcome and error, its dependencies and history. A job that is not dead is not in the queue (`hyper2kvm jobs show` shows any job).'
  static override examples = ['<%= config.bin %> <%= command.id %> 3f9c2a1b --config /etc/hyper2kvm/daemon.yaml --json']
  static override flags = {...apiFlags}
  static override summary = 'Show a dead job with every attempt.'

  public async run(): Promise<ApiJobDetail> {
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const detail = (await apiRequest('GET', `/api/v1/dlq/${encodeURIComponent(this.args.id)}`)) as ApiJobDetail
    if (!this.jsonEnabled()) for (const line of detailLines(detail)) this.log(line)
    return detail
  }
}
