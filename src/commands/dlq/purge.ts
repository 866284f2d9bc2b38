import {Args, Flags} from '@oclif/core'

import {H2KError} from '@hyper2kvm/plugin-api'
import {BaseCommand} from '../../base-command.js'
import {outputDirFlag} from '../../ctl/daemon-flags.js'
import {DLQ_STORE_NOTE, openDlqStore} from '../../ctl/dlq-store.js'
import {offlineJobService} from '../../service/offline-job-service.js'

export default class DlqPurge extends BaseCommand<typeof DlqPurge> {
  static override args = {id: Args.string({description: 'The dead job to delete (or a unique prefix of its id); without it, --all', required: false})}
  static override description = `Deletes dead jobs from the store (with their history and attempts): one by id, or every one with --all. Only dead jobs: anything else is refused (H2K_JOB_STATE). ${DLQ_STORE_NOTE}`
  static override examples = ['<%= config.bin %> <%= command.id %> 3f9c2a1b --config /etc/hyper2kvm/daemon.yaml', '<%= config.bin %> <%= command.id %> --all --output-dir /var/lib/hyper2kvm/output']
  static override flags = {
    ...outputDirFlag,
    all: Flags.boolean({description: 'Delete every dead job.'}),
  }
  static override summary = 'Delete dead jobs.'

  public async run(): Promise<{purged: number}> {
    if ((this.args.id === undefined) === !this.flags.all) throw new H2KError('H2K_USAGE', 'Name one dead job, or pass --all (not both).')
    const store = await openDlqStore(this.flags, true)
    try {
      const purged = offlineJobService(store).purge(this.args.id)
      if (!this.jsonEnabled()) this.log(`Purged ${purged} dead job(s).`)
      return {purged}
    } finally {
      store.close()
    }
  }
}
