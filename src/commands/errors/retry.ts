import {existsSync} from 'node:fs'
import {rename, rm} from 'node:fs/promises'
import {basename, join} from 'node:path'

import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {loadDaemonConfig} from '../../daemon/config.js'
import {H2KError} from '../../errors/h2k-error.js'

export default class ErrorsRetry extends BaseCommand<typeof ErrorsRetry> {
  static override args = {file: Args.string({description: 'The failed file name (as listed by `errors list`)', required: true})}
  static override description = 'Moves watch_dir/.errors/<file> back into watch_dir and removes its error file: the daemon picks it up again as a new job.'
  static override examples = ['<%= config.bin %> <%= command.id %> web01.vmdk --config /etc/hyper2kvm/daemon.yaml']
  static override flags = {'watch-dir': Flags.string({description: "The daemon's watch_dir (default: watch_dir of --config)."})}
  static override summary = 'Queue a failed file again.'

  public async run(): Promise<{file: string; requeued: string}> {
    const watchDir = this.flags['watch-dir'] ?? (await loadDaemonConfig({config: this.flags.config})).layout.inbox
    const name = basename(this.args.file)
    const failed = join(watchDir, '.errors', name)
    if (!existsSync(failed)) throw new H2KError('H2K_INPUT_NOT_FOUND', `No failed file ${name} in ${join(watchDir, '.errors')}.`, {suggestions: ['`hyper2kvm errors list` shows the failed files.']})
    const target = join(watchDir, name)
    if (existsSync(target)) throw new H2KError('H2K_OUTPUT_EXISTS', `${target} already exists (a newer upload of the same file?).`, {suggestions: ['Remove or rename one of them first.']})
    await rename(failed, target)
    await rm(`${failed}.error.json`, {force: true})
    if (!this.jsonEnabled()) this.log(`re-queued ${name} → ${target}`)
    return {file: name, requeued: target}
  }
}
