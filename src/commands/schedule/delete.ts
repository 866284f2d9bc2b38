import {Args} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {BaseCommand} from '../../base-command.js'

export default class ScheduleDelete extends BaseCommand<typeof ScheduleDelete> {
  static override args = {id: Args.string({description: 'Schedule id', required: true})}
  static override description = 'Asks the daemon\'s REST API (DELETE /api/v1/schedules/{id}). The jobs it submitted stay (`hyper2kvm jobs list`). Schedules of the daemon configuration file are removed from the file (then reload the daemon).'
  static override examples = ['<%= config.bin %> <%= command.id %> wave-1']
  static override flags = {...apiFlags}
  static override summary = 'Delete a schedule created over the API.'

  public async run(): Promise<{deleted: string}> {
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const reply = (await apiRequest('DELETE', `/api/v1/schedules/${encodeURIComponent(this.args.id)}`)) as {deleted: string}
    if (!this.jsonEnabled()) this.log(`deleted ${reply.deleted}`)
    return reply
  }
}
