import type {ErrorObject, ValidateFunction} from 'ajv'

import {H2KError, type JobSettings, type Stage} from '@hyper2kvm/plugin-api'
import {isPlainKey} from '../errors/plain-key.js'
import type {StageRegistry} from './stage-registry.js'

/** Each stage's options as it reads them (`ctx.options`): validated, defaults applied, frozen. */
export type ResolvedStageOptions = ReadonlyMap<string, Readonly<Record<string, unknown>>>

const NO_OPTIONS: Readonly<Record<string, unknown>> = Object.freeze({})

/** Compiled option schemas, per stage object (a registry's stages live as long as the process). */
const compiled = new WeakMap<Stage, ValidateFunction>()

async function validatorOf(id: string, stage: Stage): Promise<ValidateFunction> {
  let validate = compiled.get(stage)
  if (validate) return validate
  // Imported here, not at the top: most runs have no stage with options, and ajv is costly to load.
  const {Ajv} = await import('ajv')
  const ajv = new Ajv({allErrors: true, logger: false, verbose: true, strictRequired: false, strictSchema: true, strictTuples: false, strictTypes: false, useDefaults: true})
  // A schema may name its dialect; the validator speaks draft-07 whatever it says.
  const {$schema: _dialect, ...schema} = stage.options!.schema
  try {
    validate = ajv.compile(schema)
  } catch (error) {
    throw new H2KError('H2K_PLUGIN_INVALID', `Stage ${id} declares an options schema that cannot be used: ${(error as Error).message}`, {cause: error, details: {stage: id}})
  }
  // An $async schema compiles to a validator that answers with a promise, which would read as "valid" whatever
  // the options are: the options are checked before the job, synchronously, or not at all.
  if ((validate as {$async?: unknown}).$async === true) {
    throw new H2KError('H2K_PLUGIN_INVALID', `Stage ${id} declares an options schema with $async: true; the host validates options synchronously, before the job.`, {details: {stage: id}})
  }
  compiled.set(stage, validate)
  return validate
}

/**
 * Every stage's options for one job, checked before anything runs: options for a stage id that is not
 * registered, or for a stage that declares no options, are refused; a stage with a schema gets the options
 * given for it (or {}) validated, with the schema's defaults filled in. Every problem is listed, each with
 * where it was given (file:line:column, or the --stage-option), in one H2K_STAGE_OPTIONS_INVALID.
 */
export async function resolveStageOptions(registry: StageRegistry, job: Pick<JobSettings, 'stageOptions' | 'stageOptionSources'>): Promise<ResolvedStageOptions> {
  const given = job.stageOptions ?? {}
  const sources = job.stageOptionSources ?? {}
  const where = (id: string, key?: string): string => (key !== undefined ? sources[`${id}.${key}`] : undefined) ?? sources[id] ?? 'stage options'
  const problems: string[] = []
  const byId = new Map(registry.stages.map((s) => [s.id, s]))
  const withOptions = registry.stages.filter((s) => s.stage.options !== undefined).map((s) => s.id)
  for (const id of Object.keys(given).sort()) {
    const entry = byId.get(id)
    if (!entry) {
      const failed = registry.failedPlugins()
      problems.push(
        `${where(id)}: no stage ${id} is registered; stages that take options: ${withOptions.length > 0 ? withOptions.join(', ') : 'none'}; registered stages: ${[...byId.keys()].sort().join(', ')}${failed.length > 0 ? `; plugins that failed to load: ${failed.join(', ')}` : ''}`,
      )
    } else if (entry.stage.options === undefined) {
      problems.push(`${where(id)}: stage ${id} (plugin ${entry.plugin.name}) takes no options${withOptions.length > 0 ? `; stages that take options: ${withOptions.join(', ')}` : ''}`)
    }
  }
  const resolved = new Map<string, Readonly<Record<string, unknown>>>()
  for (const {id, stage} of registry.stages) {
    if (stage.options === undefined) {
      resolved.set(id, NO_OPTIONS)
      continue
    }
    const validate = await validatorOf(id, stage)
    const options = structuredClone(given[id] ?? {})
    if (validate(options)) {
      resolved.set(id, Object.freeze(options))
      continue
    }
    for (const error of validate.errors ?? []) problems.push(describe(id, error, where, given[id] !== undefined))
  }
  if (problems.length > 0) {
    throw new H2KError('H2K_STAGE_OPTIONS_INVALID', `Stage options are refused:\n${[...new Set(problems)].join('\n')}`, {
      details: {problems},
      phase: 'setup',
    })
  }
  return resolved
}

/** One schema error as `where: stage.key: what was expected` (the value given is not repeated: it may be a secret). */
function describe(id: string, error: ErrorObject, where: (id: string, key?: string) => string, anyGiven: boolean): string {
  const path = error.instancePath.split('/').slice(1).map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
  const top = path[0]
  const at = path.length > 0 ? `${id}.${path.map((key) => (isPlainKey(key) ? key : '…')).join('.')}` : id
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String((error.params as {additionalProperty: string}).additionalProperty)
      const known = Object.keys((error.parentSchema as {properties?: object} | undefined)?.properties ?? {})
      const target = path.length === 0 ? key : top
      const expected = `expected one of: ${known.join(', ') || '(none)'}`
      if (!isPlainKey(key)) return `${where(id, target)}: ${at}: an unknown option (a key of ${key.length} characters that is not a plain name, not shown); ${expected}`
      return `${where(id, target)}: ${at}${path.length > 0 ? '' : `.${key}`}: unknown option "${key}"; ${expected}`
    }
    case 'required': {
      const key = String((error.params as {missingProperty: string}).missingProperty)
      const hint = path.length === 0 ? ` (give it with --stage-option ${id}.${key}=… or stage_options: {${id}: {${key}: …}})` : ''
      return `${anyGiven ? where(id, top) : `stage ${id}`}: ${at}: missing required option "${key}"${hint}`
    }
    case 'enum':
      return `${where(id, top)}: ${at}: expected one of ${(error.params as {allowedValues: unknown[]}).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`
    default:
      return `${where(id, top)}: ${at}: ${error.message ?? 'is invalid'}`
  }
}
