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
  const named = input.extension ? ` Its name ends in ${input.extension}, but its content is not that format.` : ''
  throw new H2KError('H2K_INPUT_UNRECOGNIZED', `No loader recognises ${basename(input.path)}.${named}`, {
    details: {extension: input.extension, loaders: registry.loaders().map((l) => l.id), path: input.path},
    phase: 'load',
  })
}
