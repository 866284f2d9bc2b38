import {SimpleCtlCommand} from '../../daemon/ctl-simple.js'

export default class CtlStats extends SimpleCtlCommand {
  static override examples = ['<%= config.bin %> <%= command.id %> --output-dir /var/lib/hyper2kvm/output', '<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml --json']
  static override summary = 'Show the daemon statistics (the content of stats.json, live).'
  protected readonly request = 'stats'
}
