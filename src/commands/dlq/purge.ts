import {Args, Flags} from '@oclif/core'

import {H2KError} from '@hyper2kvm/plugin-api'
import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {BaseCommand} from '../../base-command.js'

export default class DlqPurge extends BaseCommand<typeof DlqPurge> {
  static override args = {id: Args.string({description: 'The dead job to delete (or a unique prefix of its id); without it, --all --yes', required: false})}
  static override description = 'Through the daemon\'s REST API: deletes dead jobs from the store (with their history and attempts), one by id (DELETE /api/v1/dlq/{id}), or every one with --all, which must be confirmed with --yes (DELETE /api/v1/dlq?confirm=yes). Only dead jobs: a job that is not dead is not in the queue (404).'
  static override examples = ['<%= config.bin %> <%= command.id %> 3f9c2a1b --config /etc/hyper2kvm/daemon.yaml', '<%= config.bin %> <%= command.id %> --all --yes --url http://127.0.0.1:8080']
  static override flags = {
    ...apiFlags,
    all: Flags.boolean({description: 'Delete every dead job (needs --yes).'}),
    yes: Flags.boolean({description: 'Confirm --all: every dead job and its record of attempts is gone for good.'}),
  }
  static override summary = 'Delete dead jobs.'

  public async run(): Promise<{deleted: number}> {
    if ((this.args.id === undefined) === !this.flags.all) throw new H2KError('H2K_USAGE', 'Name one dead job, or pass --all (not both).')
    if (this.flags.all && !this.flags.yes) throw new H2KError('H2K_USAGE', '--all deletes every dead job with its attempts, for good: confirm with --yes.', {suggestions: ['`hyper2kvm dlq list` shows what would go.']})
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const path = this.args.id === undefined ? '/api/v1/dlq?confirm=yes' : `/api/v1/dlq/${encodeURIComponent(this.args.id)}`
    const result = (await apiRequest('DELETE', path)) as {deleted: number}
    if (!this.jsonEnabled()) this.log(`Purged ${result.deleted} dead job(s).`)
    return result
  }
}
