import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {H2KError} from '@hyper2kvm/plugin-api'
import {secretRequestsFromFile} from '../../secrets/config-secrets.js'
import {keychainTimeoutFor} from '../../secrets/keychain.js'
import {assertSecretName, SECRET_NAMES} from '../../secrets/secret-names.js'
import {type SecretStatus, secretStatus} from '../../secrets/secret-status.js'
import {describeSource} from '../../secrets/describe-status.js'

export default class SecretsGet extends BaseCommand<typeof SecretsGet> {
  static override args = {name: Args.string({description: `Secret name: ${SECRET_NAMES.join(', ')}`, required: true})}
  static override description = 'Looks the secret up as the daemon would — keychain, systemd credential ($CREDENTIALS_DIRECTORY/NAME), the *_file key and plain key of the configuration (--config or the default search), HYPER2KVM_<NAME> — and says whether it is set and which source provides it. The value itself is printed only with --reveal.'
  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> notifications.smtp_password --config /etc/hyper2kvm/daemon.yaml', description: 'Is it set, and where?'},
    {command: '<%= config.bin %> <%= command.id %> metrics.token --reveal', description: 'Print the value (and only the value)'},
  ]
  static override flags = {reveal: Flags.boolean({default: false, description: 'Print the value (with --json: include it as "value").'})}
  static override summary = 'Say whether a secret is set and where it comes from; --reveal prints it.'

  public async run(): Promise<SecretStatus & {set: boolean}> {
    const {name} = this.args
    assertSecretName(name)
    const {file} = await this.effectiveConfig()
    const requests = await secretRequestsFromFile(file, [name])
    const report = await secretStatus(requests, (message) => this.warn(message), {debug: (message) => this.debugNote(message), keychainTimeoutMs: keychainTimeoutFor(), reveal: this.flags.reveal})
    const status = report.secrets[0]!
    if (status.error) throw new H2KError(status.error.code as 'H2K_SECRET_UNSAFE', status.error.message)
    const set = status.source !== 'none'
    if (this.flags.reveal && !set) throw new H2KError('H2K_SECRET_UNAVAILABLE', `${name} is not set in any source.`, {suggestions: [`Store it with \`hyper2kvm secrets set ${name}\`, or see \`hyper2kvm secrets list\`.`]})
    if (!this.jsonEnabled()) this.log(this.flags.reveal ? status.value! : `${name}: ${describeSource(status, report.keychain_unavailable)}`)
    return {...status, set}
  }
}
