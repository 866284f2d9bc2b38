import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {daemonOutputDir, outputDirFlag} from '../../ctl/daemon-flags.js'
import {type JobRow, JobStore} from '../../daemon/store.js'
import {escapeControl} from '../../render/escape-control.js'

export default class CtlJobs extends BaseCommand<typeof CtlJobs> {
  static override description = 'Reads the job store (output_dir/.daemon/jobs.db) directly, so it works whether the daemon runs or not.'
  static override examples = ['<%= config.bin %> <%= command.id %> --output-dir /var/lib/hyper2kvm/output', '<%= config.bin %> <%= command.id %> --status failed --json']
  static override flags = {
    ...outputDirFlag,
    limit: Flags.integer({default: 50, description: 'At most this many jobs, newest first.', min: 1}),
    status: Flags.option({description: 'Only jobs with this status.', options: ['queued', 'running', 'retry_wait', 'succeeded', 'failed', 'duplicate'] as const})(),
  }

  static override summary = 'List the daemon jobs from its job store.'

  public async run(): Promise<{jobs: Array<Omit<JobRow, 'definition_json' | 'result_json' | 'progress_json'>>}> {
    const store = JobStore.open(await daemonOutputDir(this.flags), {readonly: true})
    try {
      const jobs = store.jobs({limit: this.flags.limit, status: this.flags.status}).map(({definition_json: _d, progress_json: _p, result_json: _r, ...row}) => row)
      if (!this.jsonEnabled()) {
        const rows = [['ID', 'STATUS', 'ATTEMPTS', 'CREATED', 'FILE', 'ERROR'], ...jobs.map((j) => [j.id, j.status, String(j.attempts), j.created_at, j.source_path, j.error ? String((JSON.parse(j.error) as {code?: string}).code) : '-'])]
        for (const row of rows) for (const [c, cell] of row.entries()) row[c] = escapeControl(cell)
        const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
        for (const row of rows) this.log(row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '))
      }
      return {jobs}
    } finally {
      store.close()
    }
  }
}
