import {Args, Flags} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {BaseCommand} from '../../base-command.js'
import type {ApiScheduleRun} from '../../schedule/schedule-cli.js'

export default class ScheduleTrigger extends BaseCommand<typeof ScheduleTrigger> {
  static override args = {id: Args.string({description: 'Schedule id', required: true})}
  static override description = 'Asks the daemon\'s REST API (POST /api/v1/schedules/{id}/trigger): submits the schedule\'s jobs now, enabled or not and whatever its overlap setting; its next due time does not move. The jobs still wait for their time window unless --override-window (the emergency override) lets them run outside it.'
  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> wave-1 --now', description: 'Run the wave now (its jobs still respect the window)'},
    {command: '<%= config.bin %> <%= command.id %> wave-1 --now --override-window', description: 'Emergency: run now, outside the window'},
  ]

  static override flags = {
    ...apiFlags,
    now: Flags.boolean({default: true, description: 'Run now (the default and only mode; accepted for the seed\'s syntax).'}),
    'override-window': Flags.boolean({default: false, description: 'Let the jobs of this run start outside their time window.'}),
  }

  static override summary = 'Run a schedule now, optionally outside its time window.'

  public async run(): Promise<{run: ApiScheduleRun}> {
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const reply = (await apiRequest('POST', `/api/v1/schedules/${encodeURIComponent(this.args.id)}/trigger`, {override_window: this.flags['override-window']})) as {run: ApiScheduleRun}
    if (!this.jsonEnabled()) this.log(`${this.args.id}: ${reply.run.outcome}, jobs ${reply.run.job_ids.join(', ')}${reply.run.override_window ? ' (window overridden)' : ''}`)
    return reply
  }
}
