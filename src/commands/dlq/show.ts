import {Args} from '@oclif/core'

import {H2KError} from '@hyper2kvm/plugin-api'
import {snakeCaseKeys} from '@hyper2kvm/plugin-api/host'
import {BaseCommand} from '../../base-command.js'
import {outputDirFlag} from '../../ctl/daemon-flags.js'
import {DLQ_STORE_NOTE, openDlqStore} from '../../ctl/dlq-store.js'
import {escapeControl} from '../../render/escape-control.js'
import {offlineJobService} from '../../service/offline-job-service.js'

export default class DlqShow extends BaseCommand<typeof DlqShow> {
  static override args = {id: Args.string({description: 'Job id (or a unique prefix of it)', required: true})}
  static override description = `One job of the dead-letter queue (any job, in fact): its last error, every attempt with its outcome and error, its dependencies and history. ${DLQ_STORE_NOTE}`
  static override examples = ['<%= config.bin %> <%= command.id %> 3f9c2a1b --config /etc/hyper2kvm/daemon.yaml --json']
  static override flags = {...outputDirFlag}
  static override summary = 'Show a dead job with every attempt.'

  public async run(): Promise<Record<string, unknown>> {
    const store = await openDlqStore(this.flags, false)
    try {
      const detail = offlineJobService(store).show(this.args.id)
      if (!detail) throw new H2KError('H2K_USAGE', `No job "${this.args.id}" in ${store.path}.`, {suggestions: ['`hyper2kvm dlq list` lists the dead jobs.']})
      const {definition_json: _d, progress_json: _p, result_json: _r, error: _e, ...job} = detail.job
      const attempts = detail.attempts.map(({error_json, ...a}) => ({...a, error: error_json === null ? null : snakeCaseKeys(JSON.parse(error_json))}))
      if (!this.jsonEnabled()) {
        for (const key of ['id', 'name', 'status', 'attempts', 'source_path', 'vm_path', 'created_at', 'completed_at'] as const) this.log(`${key.padEnd(13)} ${escapeControl(String(detail.job[key]))}`)
        if (detail.error) this.log(`error         ${escapeControl(JSON.stringify(detail.error))}`)
        if (detail.dependsOn.length > 0) this.log(`depends_on    ${detail.dependsOn.join(', ')}`)
        if (detail.dependents.length > 0) this.log(`dependents    ${detail.dependents.join(', ')}`)
        this.log('attempts:')
        for (const a of attempts) this.log(`  #${a.attempt}  ${a.started_at} → ${a.ended_at ?? '…'}  ${(a.outcome ?? 'running').padEnd(9)}  ${escapeControl(a.error ? `${String((a.error as {code?: string}).code)}: ${String((a.error as {message?: string}).message)}` : '')}`)
      }
      return {...job, attempt_runs: attempts, dependents: detail.dependents, depends_on: detail.dependsOn, error: detail.error === null ? null : snakeCaseKeys(detail.error), history: detail.history}
    } finally {
      store.close()
    }
  }
}
