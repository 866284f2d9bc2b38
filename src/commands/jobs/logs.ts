import {setTimeout as sleep} from 'node:timers/promises'

import {Args, Flags} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {BaseCommand} from '../../base-command.js'
import {logLine, type LogLevel} from '../../daemon/log-line.js'

interface LogPage {
  lines: Array<{seq: number; at: string; level: LogLevel; event: string; message: string; fields: Record<string, unknown>}>
  last_seq: number
}

const FINISHED = new Set(['succeeded', 'failed', 'duplicate', 'cancelled', 'dead', 'skipped'])

export default class JobsLogs extends BaseCommand<typeof JobsLogs> {
  static override args = {id: Args.string({description: 'Job id (or a unique prefix of it)', required: true})}
  static override description = 'Through the daemon\'s REST API (GET /api/v1/jobs/{id}/log): the daemon log\'s lines that name the job (the newest 2000 are kept per job), in the daemon\'s text format. --follow keeps polling for new lines until the job has finished.'
  static override examples = ['<%= config.bin %> <%= command.id %> 3f9c2a1b', '<%= config.bin %> <%= command.id %> 3f9c2a1b --follow']
  static override flags = {
    ...apiFlags,
    follow: Flags.boolean({char: 'f', default: false, description: 'Keep printing new lines until the job has finished.'}),
    after: Flags.integer({default: 0, description: 'Only lines after this sequence number.', min: 0}),
  }

  static override summary = 'Print a job\'s log lines.'

  public async run(): Promise<LogPage> {
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const id = encodeURIComponent(this.args.id)
    const all: LogPage['lines'] = []
    let after = this.flags.after
    for (;;) {
      const page = (await apiRequest('GET', `/api/v1/jobs/${id}/log?after=${after}`)) as LogPage
      all.push(...page.lines)
      if (!this.jsonEnabled()) for (const l of page.lines) process.stdout.write(logLine(l.level, l.event, l.fields, l.message, new Date(l.at)))
      after = page.last_seq
      if (page.lines.length > 0) continue
      if (!this.flags.follow) break
      const {job} = (await apiRequest('GET', `/api/v1/jobs/${id}`)) as {job: {status: string}}
      if (FINISHED.has(job.status)) {
        // Lines written between the last read and the status check.
        const last = (await apiRequest('GET', `/api/v1/jobs/${id}/log?after=${after}`)) as LogPage
        all.push(...last.lines)
        if (!this.jsonEnabled()) for (const l of last.lines) process.stdout.write(logLine(l.level, l.event, l.fields, l.message, new Date(l.at)))
        after = last.last_seq
        break
      }
      await sleep(1000, undefined, {signal: this.abort.signal}).catch(() => undefined)
      if (this.abort.signal.aborted) break
    }
    return {last_seq: after, lines: all}
  }
}
