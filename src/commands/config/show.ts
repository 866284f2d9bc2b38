import {BaseCommand} from '../../base-command.js'
import type {EffectiveConfig} from '../../jobs/config.js'

export default class ConfigShow extends BaseCommand<typeof ConfigShow> {
  static override description = `Configuration is layered: built-in defaults < the configuration file (--config, else the first of ./hyper2kvm.yaml, ~/.config/hyper2kvm/config.yaml, /etc/hyper2kvm/config.yaml) < HYPER2KVM_<KEY> environment variables (e.g. HYPER2KVM_OUTPUT_FORMAT=raw) < job files < command-line flags. This shows the first three layers combined, and where each value came from.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %>', description: 'Effective defaults and their sources'},
    {command: 'HYPER2KVM_COMPRESS=1 <%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/site.yaml --json', description: 'As JSON'},
  ]

  static override summary = 'Show the effective configuration and where each value came from.'

  public async run(): Promise<Omit<EffectiveConfig, 'flags'>> {
    const {flags: _flags, ...config} = await this.effectiveConfig()
    if (!this.jsonEnabled()) {
      this.log(config.file ? `configuration file: ${config.file}` : `no configuration file (searched ${config.searched.join(', ')})`)
      const width = Math.max(...Object.keys(config.settings).map((k) => k.length))
      for (const [key, {source, value}] of Object.entries(config.settings)) {
        this.log(`${key.padEnd(width)}  ${(Array.isArray(value) ? value.join(',') : String(value)).padEnd(16)}  (${source})`)
      }
    }
    return config
  }
}
