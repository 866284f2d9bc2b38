import {H2KError, type LoaderStage, type PipelineStage, PLUGIN_API_VERSION, type Stage, STAGE_KINDS, type StageKind} from '@hyper2kvm/plugin-api'

export interface PluginRef {
  name: string
  version: string
}

export interface RegisteredStage<S extends Stage = Stage> {
  id: string
  stage: S
  plugin: PluginRef
}

export interface PluginFailure {
  plugin: PluginRef
  error: H2KError
  /** Why, without the plugin's name (e.g. "its hyper2kvm:register hook did not answer within 10 s"). */
  reason?: string
  /**
   * Input formats (extensions without the dot) the plugin says it reads in its package.json
   * (`"hyper2kvm": {"formats": [...]}`): known without running it, so a failed loader plugin can be named
   * when an input of its format is not recognised.
   */
  formats?: string[]
}

/** Something wrong with a plugin that does not stop it from working (shown by `plugins`, a job warning at run time). */
export interface RegistryWarning {
  code: 'PLUGIN_AFTER_UNKNOWN'
  message: string
  plugin: string
  /** The stage id the warning is about. */
  stage: string
}

/** One hook result as the host received it: who answered, and what (unvalidated) they returned. */
export interface Contribution {
  plugin: PluginRef
  result: unknown
}

const STAGE_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/

function stageId(stage: Pick<Stage, 'kind' | 'name'>): string {
  return `${stage.kind}:${stage.name}`
}

function describeProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'a stage must be an object'
  const stage = value as Partial<Stage> & Record<string, unknown>
  if (!STAGE_KINDS.includes(stage.kind as StageKind)) return `unknown stage kind ${JSON.stringify(stage.kind)} (expected one of ${STAGE_KINDS.join(', ')})`
  if (typeof stage.name !== 'string' || !STAGE_NAME.test(stage.name)) return `invalid stage name ${JSON.stringify(stage.name)} (lower-case letters, digits, '.', '_' and '-')`
  if (typeof stage.run !== 'function') return `stage ${stageId(stage as Stage)} has no run() function`
  if (stage.kind === 'loader' && typeof stage.probe !== 'function') return `loader ${stage.name} has no probe() function`
  if (stage.after !== undefined && !(Array.isArray(stage.after) && stage.after.every((a) => typeof a === 'string'))) return `stage ${stageId(stage as Stage)}: "after" must be a list of stage names`
  return undefined
}

/**
 * Orders stages of one kind so that every stage runs after the stages it names in `after`; ties (and
 * stages without constraints) keep id order, so the result never depends on the order hooks answered.
 */
function orderByAfter(stages: RegisteredStage<PipelineStage>[]): RegisteredStage<PipelineStage>[] {
  const byName = new Map(stages.map((s) => [s.stage.name, s]))
  const ordered: RegisteredStage<PipelineStage>[] = []
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (entry: RegisteredStage<PipelineStage>, path: string[]): void => {
    const mark = state.get(entry.id)
    if (mark === 'done') return
    if (mark === 'visiting') {
      throw new H2KError('H2K_PLUGIN_INVALID', `Stages ${[...path, entry.id].join(' → ')} form an "after" cycle.`, {details: {cycle: [...path, entry.id]}})
    }
    state.set(entry.id, 'visiting')
    for (const name of [...(entry.stage.after ?? [])].sort()) {
      const dependency = byName.get(name)
      if (dependency) visit(dependency, [...path, entry.id])
    }
    state.set(entry.id, 'done')
    ordered.push(entry)
  }
  for (const entry of [...stages].sort((a, b) => a.id.localeCompare(b.id))) visit(entry, [])
  return ordered
}

/**
 * Every `after:` name that names no registered stage of the same kind: the constraint is dropped (the
 * stage still runs), which is almost always a typo or a missing plugin, so it is said rather than ignored.
 */
function unknownAfters(stages: readonly RegisteredStage[]): RegistryWarning[] {
  const warnings: RegistryWarning[] = []
  for (const {id, plugin, stage} of stages) {
    for (const name of stage.after ?? []) {
      if (stages.some((other) => other.stage.kind === stage.kind && other.stage.name === name)) continue
      warnings.push({
        code: 'PLUGIN_AFTER_UNKNOWN',
        message: `Stage ${id} (plugin ${plugin.name}) says after: ${JSON.stringify(name)}, but no ${stage.kind} of that name is registered; the constraint is ignored.`,
        plugin: plugin.name,
        stage: id,
      })
    }
  }
  return warnings
}

/**
 * The stage registry: every stage contributed through the `hyper2kvm:register` hook, validated, ordered
 * deterministically, with failed plugins kept (and shown) instead of dropped.
 */
export class StageRegistry {
  readonly stages: readonly RegisteredStage[]
  readonly failures: readonly PluginFailure[]
  readonly plugins: readonly PluginRef[]
  /** Problems that do not stop a plugin from working (an `after:` naming no registered stage). */
  readonly warnings: readonly RegistryWarning[]

  private constructor(stages: RegisteredStage[], failures: PluginFailure[], plugins: PluginRef[]) {
    this.stages = stages
    this.failures = failures
    this.plugins = plugins
    this.warnings = unknownAfters(stages)
  }

  /** Build from hook answers. Answers are sorted by plugin name first: hooks run in parallel. */
  static fromContributions(contributions: readonly Contribution[], loadFailures: readonly PluginFailure[] = []): StageRegistry {
    const failures: PluginFailure[] = [...loadFailures]
    const stages: RegisteredStage[] = []
    const owner = new Map<string, PluginRef>()
    const sorted = [...contributions].sort((a, b) => a.plugin.name.localeCompare(b.plugin.name))
    for (const {plugin, result} of sorted) {
      const fail = (message: string): void => {
        failures.push({error: new H2KError('H2K_PLUGIN_INVALID', `Plugin ${plugin.name}: ${message}`, {details: {plugin: plugin.name}}), plugin})
      }
      if (result === undefined || result === null) continue // a plugin that answers nothing contributes nothing
      const registration = result as {apiVersion?: unknown; stages?: unknown}
      if (registration.apiVersion !== PLUGIN_API_VERSION) {
        fail(`unsupported plugin API version ${JSON.stringify(registration.apiVersion)}; this hyper2kvm speaks version ${PLUGIN_API_VERSION}`)
        continue
      }
      if (!Array.isArray(registration.stages)) {
        fail('registration has no "stages" list')
        continue
      }
      for (const candidate of registration.stages as unknown[]) {
        const problem = describeProblem(candidate)
        if (problem) {
          fail(problem)
          continue
        }
        const stage = candidate as Stage
        const id = stageId(stage)
        const first = owner.get(id)
        if (first) {
          fail(`stage ${id} is already contributed by ${first.name}; the duplicate is ignored`)
          continue
        }
        owner.set(id, plugin)
        stages.push({id, plugin, stage})
      }
    }
    const plugins = [...new Map([...sorted.map((c) => c.plugin), ...loadFailures.map((f) => f.plugin)].map((p) => [p.name, p])).values()]
    return new StageRegistry(stages, failures, plugins.sort((a, b) => a.name.localeCompare(b.name)))
  }

  /** Loaders in probing order: higher priority first, then id. */
  loaders(): RegisteredStage<LoaderStage>[] {
    return this.stages
      .filter((s): s is RegisteredStage<LoaderStage> => s.stage.kind === 'loader')
      .sort((a, b) => (b.stage.priority ?? 0) - (a.stage.priority ?? 0) || a.id.localeCompare(b.id))
  }

  /** Stages of one pipeline kind, in run order (`after` constraints, then id). */
  ofKind(kind: PipelineStage['kind']): RegisteredStage<PipelineStage>[] {
    return orderByAfter(this.stages.filter((s): s is RegisteredStage<PipelineStage> => s.stage.kind === kind))
  }

  /** What each plugin contributed (or why it failed), for `hyper2kvm plugins`. */
  byPlugin(): Array<{plugin: PluginRef; stages: RegisteredStage[]; failures: H2KError[]; warnings: RegistryWarning[]}> {
    return this.plugins.map((plugin) => ({
      failures: this.failures.filter((f) => f.plugin.name === plugin.name).map((f) => f.error),
      plugin,
      stages: this.stages.filter((s) => s.plugin.name === plugin.name),
      warnings: this.warnings.filter((w) => w.plugin === plugin.name),
    }))
  }

  /** The plugins that failed to load or register (all of it, or some of their stages). */
  failedPlugins(): string[] {
    return [...new Set(this.failures.map((f) => f.plugin.name))].sort()
  }
}
