import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {clusterLines, type ClusterView, readClusterView} from '../../ctl/cluster-view.js'
import {clusterStoreOf, daemonStoreTarget, outputDirFlag} from '../../ctl/daemon-flags.js'
import {JOB_STATUSES, type JobRow, JobStore} from '../../daemon/store.js'
import {errorCodeOf, tableLines, waitOf} from '../../ctl/job-table.js'

export default class CtlJobs extends BaseCommand<typeof CtlJobs> {
  static override description = 'Reads the job store (output_dir/.daemon/jobs.db) directly, so it works whether the daemon runs or not. With a --config whose store is PostgreSQL: every node of the cluster first, a NODE column (the node holding the job\'s lease), and `cluster` in --json. A queued job that does not start yet says why (WAITING: a dependency, a time window, and until when: not_before/wait_reason in --json).'
  static override examples = ['<%= config.bin %> <%= command.id %> --output-dir /var/lib/hyper2kvm/output', '<%= config.bin %> <%= command.id %> --status failed --json']
  static override flags = {
    ...outputDirFlag,
    limit: Flags.integer({default: 50, description: 'At most this many jobs, newest first.', min: 1}),
    status: Flags.option({description: 'Only jobs with this status.', options: JOB_STATUSES})(),
  }

  static override summary = 'List the daemon jobs from its job store.'

  public async run(): Promise<{jobs: Array<Omit<JobRow, 'definition_json' | 'result_json' | 'progress_json'>>; cluster?: ClusterView}> {
    const cluster = await clusterStoreOf(this.flags)
    const store = JobStore.open(cluster?.target ?? (await daemonStoreTarget(this.flags)), {readonly: true})
    try {
      const jobs = store.jobs({limit: this.flags.limit, status: this.flags.status}).map(({definition_json: _d, progress_json: _p, result_json: _r, ...row}) => row)
      // A cluster's store: every node first, and which node runs each job (its lease).
      const view = cluster === undefined ? undefined : readClusterView(store.sql, cluster.leaseTtlMs)
      if (!this.jsonEnabled()) {
        if (view) for (const line of clusterLines(view)) this.log(line)
        // WAITING: why a queued job has not started (a dependency, a time window … and until when).
        const rows = jobs.map((j) => {
          const node = view ? [String((j as {leased_by?: string | null}).leased_by ?? '-')] : []
          return [j.id, j.status, String(j.attempts), j.created_at, ...node, j.source_path, errorCodeOf(j), waitOf(j)]
        })
        for (const line of tableLines(['ID', 'STATUS', 'ATTEMPTS', 'CREATED', ...(view ? ['NODE'] : []), 'FILE', 'ERROR', 'WAITING'], rows)) this.log(line)
      }
      return view ? {cluster: view, jobs} : {jobs}
    } finally {
      store.close()
    }
  }
}
