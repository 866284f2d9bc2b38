import {Args} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {BaseCommand} from '../../base-command.js'
import {type ApiSchedule, type ApiScheduleRun, scheduleDetail} from '../../schedule/schedule-cli.js'

export default class ScheduleShow extends BaseCommand<typeof ScheduleShow> {
  static override args = {id: Args.string({description: 'Schedule id', required: true})}
  static override description = 'Asks the daemon\'s REST API (GET /api/v1/schedules/{id}): its keys, next and last run, and its latest runs — fired (with the job ids), skipped-overlap, missed (with why), queued.'
  static override examples = ['<%= config.bin %> <%= command.id %> nightly', '<%= config.bin %> <%= command.id %> wave-1 --json']
  static override flags = {...apiFlags}
  static override summary = 'Show a schedule and its latest runs.'

  public async run(): Promise<{schedule: ApiSchedule; runs: ApiScheduleRun[]}> {
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const reply = (await apiRequest('GET', `/api/v1/schedules/${encodeURIComponent(this.args.id)}`)) as {schedule: ApiSchedule; runs: ApiScheduleRun[]}
    if (!this.jsonEnabled()) for (const line of scheduleDetail(reply.schedule, reply.runs)) this.log(line)
    return reply
  }
}
