import {SimpleCtlCommand} from '../../daemon/ctl-simple.js'

export default class CtlStatus extends SimpleCtlCommand {
  static override examples = ['<%= config.bin %> <%= command.id %> --output-dir /var/lib/hyper2kvm/output', '<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml --json']
  static override summary = 'Show whether the daemon runs, its state (RUNNING, PAUSED, DRAINING) and its queue.'
  protected readonly request = 'status'
}
