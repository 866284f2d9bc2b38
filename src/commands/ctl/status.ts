import {SimpleCtlCommand} from '../../ctl/simple-ctl-command.js'
import {statusLine, wantsEmoji} from '../../ctl/stats-summary.js'
import {H2KError} from '@hyper2kvm/plugin-api'

export default class CtlStatus extends SimpleCtlCommand {
  static override description = 'Without --json the first line is the seed\'s `Status: RUNNING` (PAUSED, DRAINING, STOPPING; `Status: STOPPED` when no daemon answers, exit 12), with ▶️/⏸️/🚰/⏹️ on a terminal without NO_COLOR; then one line per field. With a --config whose store is PostgreSQL (several daemons), `cluster` is added: every node (node_id, hostname, state, alive, last heartbeat and its age, running jobs) and the job counts of the shared store; shown also when no daemon runs on this host.'
  static override examples = ['<%= config.bin %> <%= command.id %> --output-dir /var/lib/hyper2kvm/output', '<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml --json']
  static override summary = 'Show whether the daemon runs, its state (RUNNING, PAUSED, DRAINING) and its queue.'
  protected readonly request = 'status'
  protected override readonly clusterView = true

  public override async run(): Promise<Record<string, unknown>> {
    try {
      return await super.run()
    } catch (error) {
      // The seed's `status` says STOPPED when no daemon runs; the exit code (12) and the error still tell why.
      if (!this.jsonEnabled() && error instanceof H2KError && error.code === 'H2K_DAEMON_NOT_RUNNING') this.log(statusLine('STOPPED', wantsEmoji()))
      throw error
    }
  }

  protected override print(reply: Record<string, unknown>): void {
    this.log(statusLine(String(reply.state ?? 'UNKNOWN'), wantsEmoji()))
    super.print(reply)
  }
}
