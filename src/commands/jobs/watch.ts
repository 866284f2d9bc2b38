import {Args, Flags} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {readServerEvents} from '../../api-client/sse-reader.js'
import {BaseCommand} from '../../base-command.js'
import {escapeControl} from '../../render/escape-control.js'

/** The events after which a job does nothing more. */
const FINAL = new Set(['job.completed', 'job.cancelled', 'job.dead', 'job.skipped'])

export default class JobsWatch extends BaseCommand<typeof JobsWatch> {
  static override args = {id: Args.string({description: 'Only this job (id or unique prefix); the command ends when the job has finished.', required: false})}
  static override description = 'Follows the daemon\'s event stream (GET /api/v1/events, server-sent events): job.created, job.started, job.progress (at most one per job per second), job.completed, job.failed (retrying or not), job.cancelled, job.dead, job.skipped, schedule.fired, schedule.missed. One line per event, or one JSON object per line with --json. With a job id it ends once that job has finished; without, when the daemon stops or on Ctrl-C.'
  static override enableJsonFlag = false
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> 3f9c2a1b --json', '<%= config.bin %> <%= command.id %> --events job.failed,job.dead']
  static override flags = {
    ...apiFlags,
    events: Flags.string({description: 'Comma-separated event names to show (default: all).'}),
    json: Flags.boolean({default: false, description: 'One JSON object per event and line: {"id", "event", "data"}.'}),
  }

  static override summary = 'Follow job events as they happen.'

  public async run(): Promise<void> {
    const client = await apiClient(this.flags, this.abort.signal)
    let job: string | undefined
    if (this.args.id !== undefined) job = ((await client.apiRequest('GET', `/api/v1/jobs/${encodeURIComponent(this.args.id)}`)) as {job: {id: string}}).job.id
    const query = new URLSearchParams({...(job ? {job} : {}), ...(this.flags.events ? {events: this.flags.events} : {})})
    const response = await client.openStream(`/api/v1/events${query.size > 0 ? `?${query}` : ''}`, this.abort.signal)
    try {
      for await (const e of readServerEvents(response.body!)) {
        const data = JSON.parse(e.data) as Record<string, unknown>
        if (this.flags.json) process.stdout.write(`${JSON.stringify({data, event: e.event, id: e.id === undefined ? null : Number(e.id)})}\n`)
        else this.log(escapeControl(line(e.event, data)))
        if (job !== undefined && data.job_id === job && (FINAL.has(e.event) || (e.event === 'job.failed' && data.retrying === false))) break
      }
    } catch (error) {
      if (!this.abort.signal.aborted) throw error
    }
  }
}

/** `<time> <event> <job id> <name> <detail>`: what a person follows. */
function line(event: string, data: Record<string, unknown>): string {
  const error = data.error as {code?: string} | undefined
  const detail = event === 'job.progress' ? `${String(data.phase)} ${String(data.stage)}` : event === 'job.failed' ? `${error?.code ?? ''} ${data.retrying ? `retrying (attempt ${String(data.attempt)})` : 'no more retries'}` : event === 'job.completed' ? `${String(data.duration_seconds)} s → ${String(data.output_path)}` : event === 'job.skipped' ? `parent ${String(data.parent)} did not succeed` : event === 'job.cancelled' ? String(data.reason ?? '') : ''
  return [String(data.timestamp ?? ''), event.padEnd(13), String(data.job_id ?? data.schedule_id ?? ''), String(data.job_name ?? ''), detail].filter((p) => p !== '').join('  ')
}
