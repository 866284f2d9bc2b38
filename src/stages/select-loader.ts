import {basename} from 'node:path'

import {H2KError, type LoaderStage, type ProbeClaim, type ProbeInput} from '@hyper2kvm/plugin-api'
import type {RegisteredStage, StageRegistry} from './stage-registry.js'

export interface LoaderChoice {
  loader: RegisteredStage<LoaderStage>
  claim: ProbeClaim
}

/**
 * Ask every loader, in registry order, whether it recognises the input. The first content claim wins;
 * without one, the first extension claim. A probe that throws counts as "no" and is logged by the caller.
 */
export async function selectLoader(registry: StageRegistry, input: ProbeInput, onProbeError: (loader: string, error: unknown) => void): Promise<LoaderChoice> {
  let byExtension: LoaderChoice | undefined
  for (const loader of registry.loaders()) {
    let claim: ProbeClaim | null
    try {
      claim = await loader.stage.probe(input)
    } catch (error) {
      onProbeError(loader.id, error)
      continue
    }
    if (!claim) continue
    if (claim.by === 'content') return {claim, loader}
    byExtension ??= {claim, loader}
  }
  if (byExtension) return byExtension
  throw unrecognized(registry, input)
}

/**
 * Why nothing claimed the input. When the plugin that reads its extension failed to load, that is the
 * reason (not "the content is not that format"); when no loaded plugin reads the extension and some plugin
 * failed, that plugin may be the one.
 */
function unrecognized(registry: StageRegistry, input: ProbeInput): H2KError {
  const format = input.extension.replace(/^\./, '')
  const details = {extension: input.extension, loaders: registry.loaders().map((l) => l.id), path: input.path}
  const failedReader = format ? registry.failures.find((f) => f.formats?.includes(format)) : undefined
  if (failedReader) {
    return new H2KError('H2K_PLUGIN_FAILED', `No loader recognises ${basename(input.path)}: the plugin that reads ${input.extension}, ${failedReader.plugin.name}, failed to load: ${failedReader.reason ?? failedReader.error.message}`, {
      details: {...details, plugin: failedReader.plugin.name},
      phase: 'load',
    })
  }
  const readers = registry.loaders().filter((l) => l.stage.formats.includes(format))
  const failed = registry.failedPlugins()
  let why = ''
  if (input.extension && readers.length > 0) why = ` Its name ends in ${input.extension}, but its content is not that format.`
  else if (input.extension && failed.length > 0) why = ` No loaded plugin reads ${input.extension}, and ${failed.length === 1 ? 'the plugin' : 'plugins'} ${failed.join(', ')} failed to load (\`hyper2kvm plugins\` says why): ${failed.length === 1 ? 'it' : 'one of them'} may be the one that does.`
  else if (input.extension) why = ` No loaded plugin reads ${input.extension}.`
  return new H2KError('H2K_INPUT_UNRECOGNIZED', `No loader recognises ${basename(input.path)}.${why}`, {details: failed.length > 0 ? {...details, failedPlugins: failed} : details, phase: 'load'})
}
