import {BaseCommand} from '../../base-command.js'
import {ERROR_CATALOG} from '@hyper2kvm/plugin-api/host'
import {REGISTER_HOOK_TIMEOUT_MS} from '../../stages/load-registry.js'

interface PluginListing {
  name: string
  version: string
  type: string
  /** false when the plugin failed to load or to register (some of) its stages: `errors` says why. */
  ok: boolean
  stages: Array<{id: string; kind: string; description?: string; formats?: string[]; after?: string[]; options?: boolean}>
  errors: Array<{code: string; message: string}>
  warnings: Array<{code: string; message: string; stage: string}>
}

export interface PluginsResult {
  plugins: PluginListing[]
  /** Names of the plugins that failed (the command then exits with H2K_PLUGIN_FAILED's exit code). */
  failed: string[]
}

/**
 * Replaces @oclif/plugin-plugins' listing (its install/uninstall/link/update subcommands stay): shows every
 * plugin that contributes stages through `hyper2kvm:register`, first-party ones included, what each
 * contributes, and the plugins that failed, with why.
 */
export default class Plugins extends BaseCommand<typeof Plugins> {
  static override description = `Stage plugins contribute loaders, inspectors, fixers, converters and verifiers through the hyper2kvm:register hook. Install third-party ones with \`plugins install\`, develop them with \`plugins link\`. A plugin that fails to load (its hook throws, or does not answer within ${REGISTER_HOOK_TIMEOUT_MS / 1000} s) is shown FAILED with why, and the command exits ${ERROR_CATALOG.H2K_PLUGIN_FAILED.exitCode}; warnings (an \`after:\` naming no registered stage) do not change the exit code.`

  static override examples = ['<%= config.bin %> plugins', '<%= config.bin %> plugins --json', '<%= config.bin %> plugins install hyper2kvm-plugin-example']

  static override summary = 'List the stage plugins and what each contributes.'

  public async run(): Promise<PluginsResult> {
    const registry = await this.loadStageRegistry({quiet: true})
    const types = new Map(this.config.getPluginsList().map((p) => [p.name, p.name === this.config.name ? 'host' : p.type]))
    const plugins: PluginListing[] = registry.byPlugin().map(({failures, plugin, stages, warnings}) => ({
      errors: failures.map((e) => ({code: e.code, message: e.message})),
      name: plugin.name,
      ok: failures.length === 0,
      stages: stages.map(({id, stage}) => ({
        after: stage.after,
        description: stage.description,
        formats: stage.kind === 'loader' ? stage.formats : undefined,
        id,
        kind: stage.kind,
        options: stage.options === undefined ? undefined : true,
      })),
      type: types.get(plugin.name) ?? 'unknown',
      version: plugin.version,
      warnings: warnings.map(({code, message, stage}) => ({code, message, stage})),
    }))
    const failed = registry.failedPlugins()
    if (!this.jsonEnabled()) {
      for (const plugin of plugins) {
        this.log(`${plugin.name} ${plugin.version} (${plugin.type})${plugin.ok ? '' : '  FAILED'}`)
        for (const stage of plugin.stages) {
          const formats = stage.formats ? ` [${stage.formats.join(', ')}]` : ''
          this.log(`  ${stage.id.padEnd(28)} ${stage.description ?? ''}${formats}`)
        }
        for (const error of plugin.errors) this.log(`  ! ${error.code}: ${error.message}`)
        for (const warning of plugin.warnings) this.log(`  warning ${warning.code}: ${warning.message}`)
      }
      if (failed.length > 0) this.logToStderr(`${failed.length} plugin${failed.length === 1 ? '' : 's'} failed: ${failed.join(', ')} (H2K_PLUGIN_FAILED)`)
    }
    // The listing is still printed (and returned for --json); the exit code says that something failed.
    if (failed.length > 0) process.exitCode = ERROR_CATALOG.H2K_PLUGIN_FAILED.exitCode
    return {failed, plugins}
  }
}
