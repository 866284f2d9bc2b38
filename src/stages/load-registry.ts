import type {Config} from '@oclif/core'

import {H2KError, type PluginApi, REGISTER_HOOK} from '@hyper2kvm/plugin-api'

import {type Contribution, type PluginFailure, StageRegistry} from './stage-registry.js'

/** Ask every installed plugin for its stages through the `hyper2kvm:register` hook. */
export async function loadRegistry(config: Config): Promise<StageRegistry> {
  const api: PluginApi = await import('../plugin-api.js')
  const answers = await config.runHook(REGISTER_HOOK, {api})
  const contributions: Contribution[] = answers.successes.map(({plugin, result}) => ({
    plugin: {name: plugin.name, version: plugin.version},
    result,
  }))
  const failures: PluginFailure[] = answers.failures.map(({error, plugin}) => ({
    error: new H2KError('H2K_PLUGIN_FAILED', `Plugin ${plugin.name} failed to register its stages: ${error.message}`, {
      cause: error,
      details: {plugin: plugin.name},
    }),
    plugin: {name: plugin.name, version: plugin.version},
  }))
  return StageRegistry.fromContributions(contributions, failures)
}
