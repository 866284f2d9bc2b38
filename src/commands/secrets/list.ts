import {BaseCommand} from '../../base-command.js'
import {secretRequestsFromFile} from '../../secrets/config-secrets.js'
import {describeSource} from '../../secrets/describe-status.js'
import {keychainTimeoutFor} from '../../secrets/keychain.js'
import {SECRET_NAMES} from '../../secrets/secret-names.js'
import {type StatusReport, secretStatus} from '../../secrets/secret-status.js'

export default class SecretsList extends BaseCommand<typeof SecretsList> {
  static override description = `The secrets hyper2kvm knows (${SECRET_NAMES.join(', ')}) and, for each, the source that provides it now — keychain, credential ($CREDENTIALS_DIRECTORY), file (the *_file key), env (HYPER2KVM_<NAME>), config (plain value in the configuration file: --config or the default search) — or none. Never prints a value.`
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml --json']
  static override summary = 'List the known secrets and where each comes from (no values).'

  public async run(): Promise<StatusReport> {
    const {file} = await this.effectiveConfig()
    const report = await secretStatus(await secretRequestsFromFile(file, SECRET_NAMES), (message) => this.warn(message), {
      debug: (message) => this.debugNote(message),
      keychainTimeoutMs: keychainTimeoutFor(),
    })
    if (!this.jsonEnabled()) {
      const width = Math.max(...SECRET_NAMES.map((n) => n.length))
      for (const status of report.secrets) this.log(`${status.name.padEnd(width)}  ${describeSource(status)}`)
      if (report.keychain_unavailable) this.log(`(keychain not available: ${report.keychain_unavailable})`)
    }
    return report
  }
}
