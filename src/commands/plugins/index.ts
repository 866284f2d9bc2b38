import {BaseCommand} from '../../base-command.js'
import {loadRegistry} from '../../stages/load-registry.js'

interface PluginListing {
  name: string
  version: string
  type: string
  stages: Array<{id: string; kind: string; description?: string; formats?: string[]; after?: string[]}>
  errors: Array<{code: string; message: string}>
}

/**
 * Replaces @oclif/plugin-plugins' listing (its install/uninstall/link/update subcommands stay): shows every
 * plugin that contributes stages through `hyper2kvm:register`, first-party ones included, what each
 * contributes, and the plugins that failed, with why.
 */
export default class Plugins extends BaseCommand<typeof Plugins> {
  static override description = 'Stage plugins contribute loaders, inspectors, fixers, converters and verifiers through the hyper2kvm:register hook. Install third-party ones with `plugins install`, develop them with `plugins link`.'

  static override examples = ['<%= config.bin %> plugins', '<%= config.bin %> plugins --json', '<%= config.bin %> plugins install hyper2kvm-plugin-example']

  static override summary = 'List the stage plugins and what each contributes.'

  public async run(): Promise<{plugins: PluginListing[]}> {
    const registry = await loadRegistry(this.config)
    const types = new Map(this.config.getPluginsList().map((p) => [p.name, p.name === this.config.name ? 'host' : p.type]))
    const plugins: PluginListing[] = registry.byPlugin().map(({plugin, stages, failures}) => ({
      errors: failures.map((e) => ({code: e.code, message: e.message})),
      name: plugin.name,
      stages: stages.map(({id, stage}) => ({
        after: stage.after,
        description: stage.description,
        formats: stage.kind === 'loader' ? stage.formats : undefined,
        id,
        kind: stage.kind,
      })),
      type: types.get(plugin.name) ?? 'unknown',
      version: plugin.version,
    }))
    if (!this.jsonEnabled()) {
      for (const plugin of plugins) {
        this.log(`${plugin.name} ${plugin.version} (${plugin.type})${plugin.errors.length > 0 ? '  FAILED' : ''}`)
        for (const stage of plugin.stages) {
          const formats = stage.formats ? ` [${stage.formats.join(', ')}]` : ''
          this.log(`  ${stage.id.padEnd(28)} ${stage.description ?? ''}${formats}`)
        }
        for (const error of plugin.errors) this.log(`  ! ${error.code}: ${error.message}`)
      }
    }
    return {plugins}
  }
}
