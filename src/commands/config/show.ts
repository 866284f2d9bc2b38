import {BaseCommand} from '../../base-command.js'
import type {ConfigValue, EffectiveConfig} from '../../jobs/config.js'
import {configFileKeys} from '../../jobs/config-file-keys.js'
import {secretRequestsFromFile} from '../../secrets/config-secrets.js'
import {REDACTED, redactConfig} from '../../secrets/redact.js'
import {SECRET_NAMES} from '../../secrets/secret-names.js'
import {type SecretStatus, secretStatus} from '../../secrets/secret-status.js'

export interface ConfigShowResult extends Omit<EffectiveConfig, 'flags'> {
  /** The configuration file's other keys (daemon settings …), dotted, secrets as [REDACTED]. */
  keys: Record<string, ConfigValue>
  /** Which source provides each known secret (never a value). */
  secrets: SecretStatus[]
}

export default class ConfigShow extends BaseCommand<typeof ConfigShow> {
  static override description = `Configuration is layered: built-in defaults < the configuration file (--config, else the first of ./hyper2kvm.yaml, $XDG_CONFIG_HOME/hyper2kvm/config.yaml (~/.config when unset), hyper2kvm/config.yaml in each $XDG_CONFIG_DIRS directory (/etc/xdg when unset), /etc/hyper2kvm/config.yaml) < HYPER2KVM_<KEY> environment variables (e.g. HYPER2KVM_OUTPUT_FORMAT=raw) < job files < command-line flags. This shows the first three layers combined, and where each value came from; then the file's other keys (a daemon configuration's directories, retry_policy, notifications …). Secrets (${SECRET_NAMES.join(', ')}, and any key named like password/secret/token or a credential header) and every stage option value are shown as ${REDACTED}, URLs (webhook_url …) by their origin only, with the source that provides them: keychain, credential, file, env or config.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %>', description: 'Effective defaults and their sources'},
    {command: 'HYPER2KVM_COMPRESS=1 <%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/site.yaml --json', description: 'As JSON'},
  ]

  static override summary = 'Show the effective configuration and where each value came from.'

  public async run(): Promise<ConfigShowResult> {
    const {flags: _flags, ...config} = await this.effectiveConfig()
    const keys = config.file ? await configFileKeys(config.file) : {}
    const report = await secretStatus(await secretRequestsFromFile(config.file, SECRET_NAMES), (message) => this.warn(message), {debug: (message) => this.debugNote(message)})
    for (const status of report.secrets) {
      if (status.error) keys[status.name] = {source: `refused: ${status.error.code}`, value: REDACTED}
      else if (status.source !== 'none') keys[status.name] = {source: status.origin ?? status.source, value: REDACTED}
    }
    const result = redactConfig({...config, keys, secrets: report.secrets})
    if (!this.jsonEnabled()) {
      this.log(result.file ? `configuration file: ${result.file}` : `no configuration file (searched ${result.searched.join(', ')})`)
      const rows = {...result.settings, ...result.keys}
      const width = Math.max(...Object.keys(rows).map((k) => k.length))
      for (const [key, {source, value}] of Object.entries(rows)) {
        this.log(`${key.padEnd(width)}  ${(Array.isArray(value) ? value.join(',') : String(value)).padEnd(16)}  (${source})`)
      }
    }
    return result
  }
}
