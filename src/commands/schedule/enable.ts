import {Args} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {BaseCommand} from '../../base-command.js'
import {type ApiSchedule, enabledLine} from '../../schedule/schedule-cli.js'

export default class ScheduleEnable extends BaseCommand<typeof ScheduleEnable> {
  static override args = {id: Args.string({description: 'Schedule id', required: true})}
  static override description = 'Asks the daemon\'s REST API (PATCH /api/v1/schedules/{id} {"enabled": true}). Its next run is the first due time from now: runs missed while it was disabled are not caught up. Schedules of the daemon configuration file are changed in the file (then reload the daemon).'
  static override examples = ['<%= config.bin %> <%= command.id %> nightly']
  static override flags = {...apiFlags}
  static override summary = 'Enable a schedule created over the API.'

  public async run(): Promise<{schedule: ApiSchedule}> {
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const reply = (await apiRequest('PATCH', `/api/v1/schedules/${encodeURIComponent(this.args.id)}`, {enabled: true})) as {schedule: ApiSchedule}
    if (!this.jsonEnabled()) this.log(enabledLine(reply.schedule))
    return reply
  }
}
