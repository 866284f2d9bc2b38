import {readdir, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {loadDaemonConfig} from '../../daemon/config.js'

export default class ErrorsList extends BaseCommand<typeof ErrorsList> {
  static override description = 'Reads watch_dir/.errors/*.error.json, the structured error files of failed daemon jobs.'
  static override examples = ['<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml', '<%= config.bin %> <%= command.id %> --watch-dir /srv/queue --json']
  static override flags = {'watch-dir': Flags.string({description: "The daemon's watch_dir (default: watch_dir of --config)."})}
  static override summary = 'List the files the daemon failed to convert, with their error code and phase.'

  public async run(): Promise<{errors: Array<Record<string, unknown>>}> {
    const watchDir = this.flags['watch-dir'] ?? (await loadDaemonConfig({config: this.flags.config})).layout.inbox
    const dir = join(watchDir, '.errors')
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.error.json')).sort()
    const errors: Array<Record<string, unknown>> = []
    for (const name of names) {
      try {
        errors.push(JSON.parse(await readFile(join(dir, name), 'utf8')) as Record<string, unknown>)
      } catch {
        errors.push({error: 'unreadable error file', filename: name.replace(/\.error\.json$/, '')})
      }
    }
    if (!this.jsonEnabled()) {
      for (const e of errors) this.log(`${String(e.timestamp ?? '-')}  ${String(e.error_code ?? '-').padEnd(24)}  ${String(e.phase ?? '-').padEnd(8)}  ${String(e.filename)}`)
      this.log(`${errors.length} failed file(s) in ${dir}`)
    }
    return {errors}
  }
}
