import {Args} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {BaseCommand} from '../../base-command.js'
import {type ApiSchedule, enabledLine} from '../../schedule/schedule-cli.js'

export default class ScheduleDisable extends BaseCommand<typeof ScheduleDisable> {
  static override args = {id: Args.string({description: 'Schedule id', required: true})}
  static override description = 'Asks the daemon\'s REST API (PATCH /api/v1/schedules/{id} {"enabled": false}). No run starts until it is enabled again; jobs already queued are not touched. Schedules of the daemon configuration file are changed in the file (then reload the daemon).'
  static override examples = ['<%= config.bin %> <%= command.id %> nightly']
  static override flags = {...apiFlags}
  static override summary = 'Disable a schedule created over the API.'

  public async run(): Promise<{schedule: ApiSchedule}> {
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const reply = (await apiRequest('PATCH', `/api/v1/schedules/${encodeURIComponent(this.args.id)}`, {enabled: false})) as {schedule: ApiSchedule}
    if (!this.jsonEnabled()) this.log(enabledLine(reply.schedule))
    return reply
  }
}
