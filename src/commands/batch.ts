import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {sandboxFlags, stageOptionFlag, workDirFlag} from '../job-flags.js'
import {loadJobPlan} from '../jobs/job-plan.js'
import {manifestReport} from '../jobs/manifest-report.js'
import {type BatchJobOutcome, runBatch} from '../jobs/run-batch.js'
import {writeFileAtomic} from '../output/commit-outputs.js'
import {jobResultJson} from '../output/job-result-json.js'
import {PlainRenderer} from '../render/plain-renderer.js'
import {resolveStageOptions} from '../stages/stage-options.js'

/** One job of `batch --json`. */
export interface BatchJobJson {
  name: string
  status: BatchJobOutcome['status']
  duration_ms: number
  outputs: string[]
  report?: string
  /** The libvirt domain the job wrote (--emit libvirt). */
  libvirt_xml?: string
  error?: BatchJobOutcome['error']
}

export interface BatchSummary {
  file: string
  kind: 'job' | 'batch' | 'manifest'
  jobs: BatchJobJson[]
  succeeded: number
  failed: number
  cancelled: number
  skipped: number
  report?: string
}

export default class Batch extends BaseCommand<typeof Batch> {
  static override args = {
    file: Args.string({description: 'Job file (single job or `jobs:` batch, YAML or JSON) or manifest v1.0', required: true}),
  }

  static override description = `Validates the whole file first (nothing runs if any job is invalid), then runs the jobs through the same pipeline as convert, at most --concurrency at a time. Each job's progress goes to stderr as lines prefixed with [job-name]; a summary table (or --json) goes to stdout. Ctrl-C cancels the running jobs cleanly (children stopped, .part files removed). A manifest v1.0 runs as one job and its result is written to <manifest>.report.json next to it. Exit code 0 only when every job succeeded.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> batch-job.yaml --concurrency 3', description: 'Three jobs at a time'},
    {command: '<%= config.bin %> <%= command.id %> batch-job.yaml --json > summary.json', description: 'Machine-readable summary; exit 1 if any job failed'},
    {command: '<%= config.bin %> <%= command.id %> manifest.json', description: 'Run a manifest v1.0 pipeline; writes manifest.report.json'},
  ]

  static override flags = {
    concurrency: Flags.integer({description: 'Jobs run at once (default: `concurrency` from the file, else 1).', max: 64, min: 1}),
    'continue-on-error': Flags.boolean({allowNo: true, description: 'Keep starting jobs after one failed (default: `continue_on_error` from the file, else true).'}),
    progress: Flags.boolean({allowNo: true, default: true, description: 'Show per-job progress on stderr.'}),
    ...sandboxFlags,
    ...stageOptionFlag,
    ...workDirFlag,
  }

  static override summary = 'Run the jobs of a job file or a manifest v1.0, with bounded concurrency.'

  public async run(): Promise<BatchSummary> {
    // --no-sandbox overrides every job; --sandbox (the default) leaves a job file's own `sandbox: false` alone.
    const overrides = {
      ...(this.flags['work-dir'] === undefined ? {} : {'work-dir': this.flags['work-dir']}),
      ...(this.flags.sandbox === false ? {sandbox: false} : {}),
      ...(this.flags['stage-option'] === undefined ? {} : {'stage-option': this.flags['stage-option']}),
    }
    const plan = await loadJobPlan(this.args.file, {defaults: (await this.effectiveConfig()).flags, overrides})
    const registry = await this.loadStageRegistry()
    // Nothing runs if any job's stage options are refused (each problem says where it was written).
    for (const job of plan.jobs) await resolveStageOptions(registry, job.settings)
    const width = Math.max(...plan.jobs.map((j) => j.name.length))
    const prefix = (name: string): string => `[${name}]${' '.repeat(width - name.length)} `
    const write = (line: string): void => {
      process.stderr.write(`${line}\n`)
    }
    const startedAt = new Date()
    // A terminal gets listr2 (batch → job → phases), imported only then; logs and pipes get plain lines prefixed [job-name].
    const listr = this.flags.progress && process.stderr.isTTY ? new (await import('../render/batch-listr-renderer.js')).BatchListrRenderer(plan.jobs.map((j) => j.name)) : undefined
    let outcomes: BatchJobOutcome[]
    try {
      outcomes = await runBatch(plan.jobs, {
        concurrency: this.flags.concurrency ?? plan.concurrency,
        continueOnError: this.flags['continue-on-error'] ?? plan.continueOnError,
        observerFor: (job) => {
          if (listr) return listr.observerFor(job.name)
          const plain = new PlainRenderer({write}, this.logLevel, prefix(job.name))
          if (this.flags.progress) write(`${prefix(job.name)}started: ${job.settings.input}`)
          return {onEvent: (event) => (this.flags.progress || event.type === 'warning') && plain.onEvent(event)}
        },
        onJobEnd: (o) => {
          if (!listr) write(`${prefix(o.name)}${o.status}${o.error ? ` ${String(o.error.code)}: ${String(o.error.message)}` : ''} (${(o.durationMs / 1000).toFixed(1)} s)`)
        },
        registry,
        signal: this.abort.signal,
      })
    } finally {
      await listr?.finish()
    }
    const count = (status: BatchJobOutcome['status']): number => outcomes.filter((o) => o.status === status).length
    const summary: BatchSummary = {
      cancelled: count('cancelled'),
      failed: count('failed'),
      file: plan.file,
      jobs: outcomes.map(({durationMs, error, libvirtXml, name, outputs, report, status}) => ({duration_ms: durationMs, error, libvirt_xml: libvirtXml, name, outputs, report, status})),
      kind: plan.kind,
      skipped: count('skipped'),
      succeeded: count('succeeded'),
    }
    if (plan.reportFile) {
      const only = outcomes[0]!
      const report = manifestReport({durationMs: only.durationMs, error: only.error, manifest: plan.file, result: only.result && jobResultJson(only.result), startedAt: startedAt.toISOString(), status: only.status})
      await writeFileAtomic(plan.reportFile, `${JSON.stringify(report, null, 2)}\n`)
      summary.report = plan.reportFile
    }
    if (!this.jsonEnabled()) this.printTable(summary)
    process.exitCode = this.abort.signal.aborted ? 130 : summary.succeeded === outcomes.length ? 0 : 1
    return summary
  }

  private printTable(summary: BatchSummary): void {
    const rows = [
      ['JOB', 'STATUS', 'DURATION', 'OUTPUT', 'ERROR'],
      ...summary.jobs.map((j) => [j.name, j.status, `${(j.duration_ms / 1000).toFixed(1)} s`, j.outputs.join(', ') || '-', j.error ? String(j.error.code) : '-']),
    ]
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
    for (const row of rows) this.log(row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '))
    this.log(`${summary.succeeded} succeeded, ${summary.failed} failed${summary.cancelled ? `, ${summary.cancelled} cancelled` : ''}${summary.skipped ? `, ${summary.skipped} skipped` : ''}`)
    if (summary.report) this.log(`report: ${summary.report}`)
  }
}
