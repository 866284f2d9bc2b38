import {Args} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {keychainSet, keychainTimeoutFor} from '../../secrets/keychain.js'
import {readSecretInput} from '../../secrets/read-secret-input.js'
import {registerSecret} from '../../secrets/redact.js'
import {assertSecretName, KEYCHAIN_SERVICE, SECRET_NAMES} from '../../secrets/secret-names.js'

export default class SecretsSet extends BaseCommand<typeof SecretsSet> {
  static override args = {name: Args.string({description: `Secret name: ${SECRET_NAMES.join(', ')}`, required: true})}
  static override description = `Reads the value from stdin (a hidden prompt on a terminal; a pipe or file otherwise; one trailing newline is dropped) — never from the command line, where every user can read it — and stores it in the OS keychain (service "${KEYCHAIN_SERVICE}", account NAME), which is the first place secrets are looked up. Needs a Secret Service (GNOME Keyring, KWallet) on Linux: on a headless server use a systemd credential or a 0600 *_file instead.`
  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> notifications.smtp_password', description: 'Prompt for the SMTP password (not echoed)'},
    {command: 'printf %s "$TOKEN" | <%= config.bin %> <%= command.id %> metrics.token --json', description: 'From a pipe'},
  ]
  static override summary = 'Store a secret in the OS keychain, reading its value from stdin.'

  public async run(): Promise<{name: string; stored: boolean; source: 'keychain'}> {
    const {name} = this.args
    assertSecretName(name)
    const value = await readSecretInput(name)
    registerSecret(value)
    await keychainSet(name, value, {timeoutMs: keychainTimeoutFor()})
    if (!this.jsonEnabled()) this.log(`${name} stored in the keychain (service ${KEYCHAIN_SERVICE})${SECRET_NAMES.includes(name as never) ? '' : ' — note: hyper2kvm itself does not use this name'}`)
    return {name, source: 'keychain', stored: true}
  }
}
