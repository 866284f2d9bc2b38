import {Args} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import type {ApiJob} from '../../api-client/job-table.js'
import {BaseCommand} from '../../base-command.js'
import {escapeControl} from '../../render/escape-control.js'

interface Detail {
  job: ApiJob & Record<string, unknown>
  history: Array<{at: string; from_status: string | null; to_status: string; detail: string | null}>
  attempts: Array<{attempt: number; started_at: string; ended_at: string | null; outcome: string | null}>
  depends_on: string[]
  dependents: string[]
  report: Record<string, unknown> | null
}

export default class JobsShow extends BaseCommand<typeof JobsShow> {
  static override args = {id: Args.string({description: 'Job id (or a unique prefix of it)', required: true})}
  static override description = 'Asks the daemon\'s REST API (GET /api/v1/jobs/{id}): the job, its history (one row per status change), its attempts, what it depends on and what depends on it, and its report once it succeeded (--json has all of it).'
  static override examples = ['<%= config.bin %> <%= command.id %> 3f9c2a1b', '<%= config.bin %> <%= command.id %> 3f9c2a1b --json']
  static override flags = {...apiFlags}
  static override summary = 'Show one job with its history, attempts and report.'

  public async run(): Promise<Detail> {
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const detail = (await apiRequest('GET', `/api/v1/jobs/${encodeURIComponent(this.args.id)}`)) as Detail
    if (!this.jsonEnabled()) {
      const {job} = detail
      for (const key of ['id', 'name', 'status', 'origin', 'attempts', 'source_path', 'output_path', 'created_at', 'started_at', 'completed_at', 'not_before', 'wait_reason'] as const) {
        if (job[key] !== null && job[key] !== undefined) this.log(`${key.padEnd(13)} ${escapeControl(String(job[key]))}`)
      }
      if (job.error) this.log(`error         ${escapeControl(`${job.error.code}: ${job.error.message}`)}`)
      if (detail.depends_on.length > 0) this.log(`depends on    ${detail.depends_on.join(', ')}`)
      if (detail.dependents.length > 0) this.log(`dependents    ${detail.dependents.join(', ')}`)
      this.log('history:')
      for (const h of detail.history) this.log(`  ${h.at}  ${(h.from_status ?? '-').padEnd(10)} → ${h.to_status.padEnd(10)}  ${escapeControl(h.detail ?? '')}`)
      if (detail.attempts.length > 0) this.log('attempts:')
      for (const a of detail.attempts) this.log(`  #${a.attempt}  ${a.started_at} → ${a.ended_at ?? 'running'}  ${a.outcome ?? ''}`)
      if (detail.report) this.log('report: present (--json shows it)')
    }
    return detail
  }
}
