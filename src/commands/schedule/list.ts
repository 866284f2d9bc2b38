import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {BaseCommand} from '../../base-command.js'
import {type ApiSchedule, scheduleTable} from '../../schedule/schedule-cli.js'

export default class ScheduleList extends BaseCommand<typeof ScheduleList> {
  static override description = 'Asks the daemon\'s REST API (GET /api/v1/schedules): every schedule, from the configuration file (FROM config: change it there) and created over the API, with its next and last run.'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']
  static override flags = {...apiFlags}
  static override summary = 'List the daemon\'s schedules.'

  public async run(): Promise<{schedules: ApiSchedule[]}> {
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const reply = (await apiRequest('GET', '/api/v1/schedules')) as {schedules: ApiSchedule[]}
    if (!this.jsonEnabled()) for (const line of scheduleTable(reply.schedules)) this.log(line)
    return reply
  }
}
