import {allNodesFlags, SimpleCtlCommand} from '../../ctl/simple-ctl-command.js'

export default class CtlPause extends SimpleCtlCommand {
  static override examples = ['<%= config.bin %> <%= command.id %> --output-dir /var/lib/hyper2kvm/output', '<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml --json', '<%= config.bin %> <%= command.id %> --all --config /etc/hyper2kvm/daemon.yaml']
  static override flags = {...SimpleCtlCommand.flags, ...allNodesFlags}
  static override summary = 'Pause the daemon: running jobs finish, none start until resume.'
  protected readonly request = 'pause'
}
