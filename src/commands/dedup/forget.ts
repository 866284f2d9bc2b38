import {basename} from 'node:path'

import {Args} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {daemonStoreTarget, outputDirFlag} from '../../ctl/daemon-flags.js'
import {JobStore} from '../../daemon/store.js'

export default class DedupForget extends BaseCommand<typeof DedupForget> {
  static override args = {file: Args.string({description: 'File name (a path is reduced to its name)', required: true})}
  static override description = 'Deletes every processed_files record of that file name (whatever its size or hash): the next drop of the file is converted again instead of being skipped as a duplicate. The job and its history stay. Works while the daemon runs.'
  static override examples = ['<%= config.bin %> <%= command.id %> web01.vmdk --output-dir /var/lib/hyper2kvm/output', '<%= config.bin %> <%= command.id %> web01.vmdk --config /etc/hyper2kvm/daemon.yaml --json']
  static override flags = {...outputDirFlag}
  static override summary = 'Forget a processed file, so it is converted again when dropped.'

  public async run(): Promise<{file: string; forgotten: number}> {
    const store = JobStore.openExisting(await daemonStoreTarget(this.flags))
    try {
      const file = basename(this.args.file)
      const forgotten = store.forgetProcessed(file)
      if (!this.jsonEnabled()) this.log(forgotten > 0 ? `forgot ${forgotten} record(s) of ${file}` : `${file} was not recorded as processed`)
      return {file, forgotten}
    } finally {
      store.close()
    }
  }
}
