import {BaseCommand} from '../../base-command.js'
import {errorsLayout, watchDirFlag} from '../../ctl/daemon-flags.js'
import {errorFileJson, readErrorFiles} from '../../daemon/error-files.js'
import {escapeControl} from '../../render/escape-control.js'

export default class ErrorsList extends BaseCommand<typeof ErrorsList> {
  static override description = `Reads the structured error files of failed daemon jobs, newest first: watch_dir/.errors/*.error.json in the watch layout, <dir>/failed/<YYYY-MM-DD>/*.error.json in the workflow and manifest-workflow layouts. The failed files sit beside their error file.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml',
    '<%= config.bin %> <%= command.id %> --watch-dir /srv/queue --json',
  ]
  static override flags = {...watchDirFlag}
  static override summary = 'List the files the daemon failed to convert, with their error code and phase.'

  public async run(): Promise<{layout: string; error_roots: string[]; count: number; errors: Array<Record<string, unknown>>}> {
    const layout = await errorsLayout(this.flags)
    const entries = await readErrorFiles(layout)
    if (!this.jsonEnabled()) {
      if (entries.length > 0) this.log(`${'FAILED AT'.padEnd(24)}  ${'CODE'.padEnd(24)}  ${'PHASE'.padEnd(8)}  FILE`)
      for (const e of entries) {
        // One row per file: names and fields are escaped, so a newline in a dropped name cannot forge a row.
        const code = escapeControl(e.unreadable === undefined ? String(e.record?.error_code ?? '-') : 'unreadable')
        const extra = e.files.length > 1 ? ` (+${e.files.length - 1} file(s))` : ''
        this.log(`${e.failedAt.toISOString().padEnd(24)}  ${code.padEnd(24)}  ${escapeControl(String(e.record?.phase ?? '-')).padEnd(8)}  ${escapeControl(e.filename)}${extra}`)
      }
      this.log(`${entries.length} failed file(s) in ${layout.errorRoots.join(', ')}${layout.datedErrors ? '/<date>' : ''}`)
    }
    return {count: entries.length, error_roots: layout.errorRoots, errors: entries.map(errorFileJson), layout: layout.kind}
  }
}
