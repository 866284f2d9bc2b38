import {Args, Flags} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import type {ApiJobDetail} from '../../api-client/job-detail.js'
import {type WatchedEvent, eventLine, finalEventOf, isFinal} from '../../api-client/job-event-line.js'
import {readServerEvents} from '../../api-client/sse-reader.js'
import {BaseCommand} from '../../base-command.js'
import {escapeControl} from '../../render/escape-control.js'

export default class JobsWatch extends BaseCommand<typeof JobsWatch> {
  static override args = {id: Args.string({description: 'Only this job (id or unique prefix); the command ends when the job has finished (at once, with its last event, when it already has).', required: false})}
  static override description = 'Follows the daemon\'s event stream (GET /api/v1/events, server-sent events): job.created, job.started, job.progress (at most one per job per second), job.completed, job.failed (retrying or not), job.cancelled, job.dead, job.skipped, schedule.fired, schedule.missed. One line per event — `<time> <event> <job id> <name> <detail>` (the error code of a failure, the parent of a skipped job) — or one JSON object per line with --json. With a job id it ends once that job has finished; without, when the daemon stops or on Ctrl-C.'
  static override enableJsonFlag = false
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> 3f9c2a1b --json', '<%= config.bin %> <%= command.id %> --events job.failed,job.dead']
  static override flags = {
    ...apiFlags,
    events: Flags.string({description: 'Comma-separated event names to show (default: all).'}),
    json: Flags.boolean({default: false, description: 'One JSON object per event and line: {"id", "event", "data"} (id null for the last event of a job that had finished before the stream opened).'}),
  }

  static override summary = 'Follow job events as they happen.'

  public async run(): Promise<void> {
    const client = await apiClient(this.flags, this.abort.signal)
    const query = new URLSearchParams({...(this.args.id ? {job: this.args.id} : {}), ...(this.flags.events ? {events: this.flags.events} : {})})
    const response = await client.openStream(`/api/v1/events${query.size > 0 ? `?${query}` : ''}`, this.abort.signal)
    const body = response.body!
    try {
      let job: string | undefined
      if (this.args.id !== undefined) {
        // Asked once the stream is open: a job that ends from now on is on the stream; one that ended before is told from its detail.
        const detail = (await client.apiRequest('GET', `/api/v1/jobs/${encodeURIComponent(this.args.id)}`)) as ApiJobDetail
        const final = finalEventOf(detail)
        if (final) {
          this.print(final, null)
          return
        }
        job = detail.job.id
      }
      for await (const e of readServerEvents(body)) {
        const watched: WatchedEvent = {data: JSON.parse(e.data) as Record<string, unknown>, event: e.event}
        this.print(watched, e.id === undefined ? null : Number(e.id))
        if (job !== undefined && watched.data.job_id === job && isFinal(watched)) break
      }
    } catch (error) {
      if (!this.abort.signal.aborted) throw error
    } finally {
      // Not read to its end: closed (the daemon sees the client go).
      if (!body.locked) await body.cancel()
    }
  }

  private print(e: WatchedEvent, id: number | null): void {
    if (this.flags.json) process.stdout.write(`${JSON.stringify({data: e.data, event: e.event, id})}\n`)
    else this.log(escapeControl(eventLine(e)))
  }
}
