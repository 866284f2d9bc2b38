import {Args} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {daemonStoreTarget, outputDirFlag} from '../../ctl/daemon-flags.js'
import {type HistoryRow, JobStore} from '../../daemon/store.js'
import {H2KError} from '@hyper2kvm/plugin-api'
import {snakeCaseKeys} from '@hyper2kvm/plugin-api/host'
import {escapeControl} from '../../render/escape-control.js'
import {waitOf} from '../../ctl/job-table.js'

export default class CtlJob extends BaseCommand<typeof CtlJob> {
  static override args = {id: Args.string({description: 'Job id (or a unique prefix of it)', required: true})}
  static override description = 'Reads the job store directly: the job, its definition, result or error, why it waits (not_before, wait_reason), what it depends on and what depends on it, every attempt with its outcome, and one history row per status change.'
  static override examples = ['<%= config.bin %> <%= command.id %> 3f9c2a1b --output-dir /var/lib/hyper2kvm/output --json']
  static override flags = {...outputDirFlag}
  static override summary = 'Show one daemon job with its history.'

  public async run(): Promise<Record<string, unknown>> {
    const store = JobStore.open(await daemonStoreTarget(this.flags), {readonly: true})
    try {
      const row = store.findJob(this.args.id)
      if (!row) throw new H2KError('H2K_USAGE', `No job "${this.args.id}" in ${store.path}.`, {suggestions: ['`hyper2kvm ctl jobs` lists the job ids.']})
      const history: HistoryRow[] = store.historyOf(row.id)
      // The store keeps the job's definition (its settings) as the code names them: shown in snake_case, as every key we print.
      const parse = (text: string | null): unknown => (text === null ? null : snakeCaseKeys(JSON.parse(text)))
      const attemptRuns = store.attemptsOf(row.id).map(({error_json, ...a}) => ({...a, error: parse(error_json)}))
      const dependsOn = store.dependenciesOf(row.id)
      const dependents = store.dependentsOf(row.id)
      const job = {...row, attempt_runs: attemptRuns, definition: parse(row.definition_json), dependents, depends_on: dependsOn, error: parse(row.error), history, progress: parse(row.progress_json), result: parse(row.result_json)}
      const {definition_json: _d, progress_json: _p, result_json: _r, ...shown} = job
      if (!this.jsonEnabled()) {
        for (const key of ['id', 'name', 'status', 'attempts', 'source_path', 'vm_path', 'output_path', 'created_at', 'started_at', 'completed_at'] as const) this.log(`${key.padEnd(13)} ${escapeControl(String(row[key]))}`)
        if (row.wait_reason || row.not_before !== null) this.log(`waiting       ${escapeControl(waitOf(row))}`)
        if (dependsOn.length > 0) this.log(`depends_on    ${dependsOn.join(', ')}`)
        if (dependents.length > 0) this.log(`dependents    ${dependents.join(', ')}`)
        if (job.error) this.log(`error         ${escapeControl(JSON.stringify(job.error))}`)
        if (attemptRuns.length > 0) this.log('attempts:')
        for (const a of attemptRuns) this.log(`  #${a.attempt}  ${a.started_at} → ${a.ended_at ?? '…'}  ${a.outcome ?? 'running'}${a.error ? `  ${escapeControl(String((a.error as {code?: string}).code))}` : ''}`)
        this.log('history:')
        for (const h of history) this.log(`  ${h.at}  ${(h.from_status ?? '-').padEnd(10)} → ${h.to_status.padEnd(10)}  ${escapeControl(h.detail ?? '')}`)
      }
      return shown
    } finally {
      store.close()
    }
  }
}
