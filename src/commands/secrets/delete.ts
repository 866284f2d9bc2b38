import {Args} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {keychainDelete, keychainTimeoutFor} from '../../secrets/keychain.js'
import {assertSecretName, KEYCHAIN_SERVICE, SECRET_NAMES} from '../../secrets/secret-names.js'

export default class SecretsDelete extends BaseCommand<typeof SecretsDelete> {
  static override args = {name: Args.string({description: `Secret name: ${SECRET_NAMES.join(', ')}`, required: true})}
  static override description = `Deletes the keychain entry (service "${KEYCHAIN_SERVICE}", account NAME). Other sources (systemd credential, *_file, HYPER2KVM_* variable, the configuration) are not touched: \`secrets list\` shows which one provides it now.`
  static override examples = ['<%= config.bin %> <%= command.id %> notifications.smtp_password', '<%= config.bin %> <%= command.id %> metrics.token --json']
  static override summary = 'Delete a secret from the OS keychain.'

  public async run(): Promise<{name: string; deleted: boolean}> {
    const {name} = this.args
    assertSecretName(name)
    const deleted = await keychainDelete(name, {timeoutMs: keychainTimeoutFor()})
    if (!this.jsonEnabled()) this.log(deleted ? `${name} deleted from the keychain` : `${name} was not in the keychain`)
    return {deleted, name}
  }
}
