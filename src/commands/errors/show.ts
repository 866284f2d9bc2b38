import {join} from 'node:path'

import {Args} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {errorsLayout, watchDirFlag} from '../../ctl/daemon-flags.js'
import {type ErrorFile, errorFileJson, findErrorFile} from '../../daemon/error-files.js'

export default class ErrorsShow extends BaseCommand<typeof ErrorsShow> {
  static override args = {
    file: Args.string({description: 'The failed file (as `errors list` shows it), its error file name (<file>.error.json), or a path to either', required: true}),
  }
  static override description = 'Shows one error file in full: the error and its code, where it happened, the suggestions, the retry history, the files kept for a retry and the host facts recorded at the time. When the same file failed more than once (workflow layouts keep one directory per day), the newest is shown; pass the error file path to choose another.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> web01.vmdk --config /etc/hyper2kvm/daemon.yaml',
    '<%= config.bin %> <%= command.id %> /srv/workflow/failed/2026-11-20/app.ovf.error.json --config /etc/hyper2kvm/workflow.yaml --json',
  ]
  static override flags = {...watchDirFlag}
  static override summary = 'Show why the daemon failed to convert a file.'

  public async run(): Promise<{error: Record<string, unknown>; others: string[]}> {
    const {entry, others} = await findErrorFile(await errorsLayout(this.flags), this.args.file)
    if (!this.jsonEnabled()) {
      for (const line of describe(entry)) this.log(line)
      if (others.length > 0) this.log(`\n${others.length} older error file(s) for ${entry.filename}: ${others.map((o) => o.path).join(', ')}`)
    }
    return {error: errorFileJson(entry), others: others.map((o) => o.path)}
  }
}

const row = (label: string, value: unknown): string => `${label.padEnd(14)}${String(value)}`

function describe(entry: ErrorFile): string[] {
  const r = entry.record ?? {}
  const lines = [row('file', entry.filename), row('error file', entry.path), row('failed at', entry.failedAt.toISOString())]
  if (entry.unreadable !== undefined) return [...lines, row('unreadable', entry.unreadable)]
  lines.push(row('code', `${r.error_code ?? '-'}${r.exit_code === undefined ? '' : ` (exit ${r.exit_code})`}${r.permanent === true ? ', permanent' : r.permanent === false ? ', retryable' : ''}`))
  if (r.phase) lines.push(row('phase', `${r.phase}${r.stage ? ` (${r.stage})` : ''}`))
  if (r.job_id) lines.push(row('job', r.job_id))
  if (r.file_size_mb !== undefined) lines.push(row('size', `${r.file_size_mb} MB`))
  if (r.original_path) lines.push(row('dropped as', r.original_path))
  lines.push(row('error', r.error ?? '-'))
  const suggestions = Array.isArray(r.suggestions) && r.suggestions.length > 0 ? r.suggestions : r.suggestion ? [r.suggestion] : []
  for (const [i, s] of suggestions.entries()) lines.push(row(i === 0 ? 'suggestion' : '', `→ ${s}`))
  const retry = r.retry_info
  if (retry) {
    const why = retry.reason_not_retried ? `; not retried: ${retry.reason_not_retried}` : ''
    lines.push(row('attempts', `${retry.attempts ?? '?'} of ${1 + (retry.max_retries ?? 0)}${retry.retry_enabled === false ? ' (retries disabled)' : ''}${why}`))
  }
  for (const [i, f] of entry.files.entries()) lines.push(row(i === 0 ? 'files' : '', join(entry.dir, f)))
  const info = r.system_info
  if (info) lines.push(row('host', Object.entries(info).map(([k, v]) => `${k}=${String(v)}`).join(' ')))
  if (r.details && Object.keys(r.details).length > 0) lines.push(row('details', JSON.stringify(r.details)))
  lines.push('', `Once the cause is fixed, queue it again: hyper2kvm errors retry ${entry.filename}`)
  return lines
}
