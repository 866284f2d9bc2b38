import {existsSync} from 'node:fs'
import {lstat, mkdir, rename, rm} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {Args} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {errorsLayout, watchDirFlag} from '../../ctl/daemon-flags.js'
import {findErrorFile, removeEmptyDirs} from '../../daemon/error-files.js'
import {H2KError} from '@hyper2kvm/plugin-api'

export default class ErrorsRetry extends BaseCommand<typeof ErrorsRetry> {
  static override args = {
    file: Args.string({description: 'The failed file (as `errors list` shows it), its error file name (<file>.error.json), or a path to either', required: true}),
  }
  static override description = `Moves the failed item's files (the file and what travelled with it: an OVF's disks, a job config's inputs) from beside its error file back into the layout's inbox (watch_dir, or to_be_processed/ of a workflow layout), keeping their relative paths, and removes the error file: the daemon picks the item up again as a new job. Nothing is moved when one of the targets already exists.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> web01.vmdk --config /etc/hyper2kvm/daemon.yaml',
    '<%= config.bin %> <%= command.id %> app.ovf --config /etc/hyper2kvm/workflow.yaml --json',
  ]
  static override flags = {...watchDirFlag}
  static override summary = 'Queue a failed file again.'

  public async run(): Promise<{file: string; requeued: string; files: string[]; error_file: string}> {
    const layout = await errorsLayout(this.flags)
    const {entry} = await findErrorFile(layout, this.args.file)
    const moves = entry.files.map((f) => ({from: join(entry.dir, f), to: join(layout.inbox, f)}))
    const missing = []
    for (const m of moves) if (!(await lstat(m.from).catch(() => undefined))) missing.push(m.from)
    if (missing.length > 0) {
      throw new H2KError('H2K_INPUT_NOT_FOUND', `Cannot retry ${entry.filename}: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} gone from ${entry.dir}.`, {
        details: {error_file: entry.path, missing},
        suggestions: ['Drop the file into the inbox again by hand, then remove its error file (`hyper2kvm errors purge` removes old ones).'],
      })
    }
    const taken = moves.filter((m) => existsSync(m.to)).map((m) => m.to)
    if (taken.length > 0) {
      throw new H2KError('H2K_OUTPUT_EXISTS', `Cannot retry ${entry.filename}: ${taken.join(', ')} already ${taken.length === 1 ? 'exists' : 'exist'} (a newer upload of the same file?); nothing was moved.`, {
        details: {error_file: entry.path, taken},
        suggestions: ['Remove or rename the file in the inbox first, or wait until the daemon has processed it.'],
      })
    }
    // The main file last: the daemon then finds everything it refers to already in place.
    for (const m of [...moves.slice(1), moves[0]!]) {
      await mkdir(dirname(m.to), {recursive: true})
      await rename(m.from, m.to)
    }
    await rm(entry.path, {force: true})
    await removeEmptyDirs(layout, entry)
    const requeued = moves[0]!.to
    if (!this.jsonEnabled()) {
      this.log(`re-queued ${entry.filename} → ${requeued}`)
      for (const m of moves.slice(1)) this.log(`  with ${m.to}`)
    }
    return {error_file: entry.path, file: entry.filename, files: moves.map((m) => m.to), requeued}
  }
}
