import {randomUUID} from 'node:crypto'
import {mkdir, mkdtemp, rm} from 'node:fs/promises'
import {join, resolve} from 'node:path'

import {
  H2KError,
  type JobEvent,
  type JobObserver,
  type JobResult,
  type JobSettings,
  type JobWarning,
  type LoaderContext,
  type OutputRecord,
  type PhaseName,
  type PipelineStage,
  silentObserver,
  type Source,
  type StageContext,
  type StageRecord,
} from '@hyper2kvm/plugin-api'
import {mapForeignError} from '../errors/map-foreign-error.js'
import type {ChildRecords} from '../exec/child-records.js'
import {runTool} from '../exec/run-tool.js'
import {imageInfo} from '../qemu/qemu-img.js'
import {sandboxRunner} from '../sandbox/sandbox-probe.js'
import {bytesOnDisk, commitOutputs, discardParts, writeFileAtomic} from '../output/commit-outputs.js'
import {sha256File} from '../output/file-checksum.js'
import {ensureFreeSpace} from '../output/free-space.js'
import {jobResultJson} from '../output/job-result-json.js'
import {domainXmlPath, planOutputs, reportPath} from '../output/plan-outputs.js'
import {libvirtDomain} from '../libvirt/emit-domain.js'
import {ChangeList} from './change-list.js'
import {JobGuestAccess} from '../guest/job-guest-access.js'
import {describeDisks} from './describe-disks.js'
import {readProbeInput} from './probe-input.js'
import {selectLoader} from './select-loader.js'
import {type ResolvedStageOptions, resolveStageOptions} from './stage-options.js'
import type {StageRegistry} from './stage-registry.js'

export interface RunJobOptions {
  registry: StageRegistry
  signal?: AbortSignal
  observer?: JobObserver
  jobId?: string
  /**
   * `inspect` stops after INSPECT (`hyper2kvm inspect`); `fix` runs the fixers as a dry run (`ctx.dryRun`) and
   * stops after FIX (`hyper2kvm inspect --plan`). Either writes nothing: the overlays live in the work directory,
   * which is removed, and no output is planned.
   */
  stopAfter?: 'inspect' | 'fix'
  /** Record children that detach from us (the libguestfs appliance) here, for a later instance to reap. */
  childRecords?: ChildRecords
}

interface Step {
  id: string
  run: () => Promise<void>
  /** A failure that this returns a warning for is recorded and the phase goes on (--continue-on-fix-error). */
  tolerate?: (error: H2KError) => string | undefined
}

/**
 * The one pipeline: LOAD → INSPECT → FIX → CONVERT → VERIFY, then commit. `convert`, `batch` and the
 * daemon all call exactly this. On any failure the `.part` outputs and the work directory are removed
 * and the error (always an H2KError) is thrown with its phase and stage.
 */
export async function runJob(settings: JobSettings, options: RunJobOptions): Promise<JobResult> {
  const job: JobSettings = {...settings, input: resolve(settings.input), outputDir: resolve(settings.outputDir)}
  const jobId = options.jobId ?? randomUUID().slice(0, 8)
  const observer = options.observer ?? silentObserver
  const signal = options.signal ?? new AbortController().signal
  const emit = (event: JobEvent): void => observer.onEvent(event)
  const startedAt = new Date()
  const stages: StageRecord[] = []
  const warnings: JobWarning[] = []
  const current: {phase: PhaseName; stage: string} = {phase: 'load', stage: 'core:probe'}
  let workDir: string | undefined
  let ctx: StageContext | undefined
  let guestAccess: JobGuestAccess | undefined
  let committed = false
  /** The libvirt domain this job placed (--emit libvirt): taken back with the outputs if the job fails after. */
  let placedXml: string | undefined
  /** Every stage's validated options: `ctx.options` shows those of the stage in `current.stage`. */
  let stageOptions: ResolvedStageOptions = new Map()

  const runPhase = async (phase: PhaseName, steps: Step[], skipped: string[] = []): Promise<void> => {
    for (const id of skipped) stages.push({durationMs: 0, id, phase, status: 'skipped'})
    emit({phase, stages: steps.map((s) => s.id), type: 'phase:start'})
    const phaseStart = performance.now()
    for (const step of steps) {
      signal.throwIfAborted()
      current.phase = phase
      current.stage = step.id
      emit({phase, stage: step.id, type: 'stage:start'})
      const t0 = performance.now()
      try {
        await step.run()
      } catch (error) {
        const mapped = mapForeignError(error, {phase, stage: step.id})
        const durationMs = Math.round(performance.now() - t0)
        stages.push({durationMs, id: step.id, phase, status: 'failed'})
        emit({durationMs, phase, stage: step.id, status: 'failed', type: 'stage:end'})
        const warning = signal.aborted ? undefined : step.tolerate?.(mapped)
        if (warning !== undefined) {
          ctx?.warn(mapped.code, warning)
          continue
        }
        emit({durationMs: Math.round(performance.now() - phaseStart), phase, status: 'failed', type: 'phase:end'})
        throw mapped
      }
      const durationMs = Math.round(performance.now() - t0)
      stages.push({durationMs, id: step.id, phase, status: 'ok'})
      emit({durationMs, phase, stage: step.id, status: 'ok', type: 'stage:end'})
    }
    emit({durationMs: Math.round(performance.now() - phaseStart), phase, status: steps.length > 0 ? 'ok' : 'skipped', type: 'phase:end'})
  }

  /** Applicable stages of a kind, in registry order; `single` keeps only the first (one converter runs). */
  const pipelineSteps = async (kind: PipelineStage['kind'], context: StageContext, single = false): Promise<{steps: Step[]; skipped: string[]}> => {
    const steps: Step[] = []
    const skipped: string[] = []
    for (const entry of options.registry.ofKind(kind)) {
      // The host enforces --no-fix (fix: false) for every fixer, first-party or not: a third party's applies() is never asked.
      const allowed = kind !== 'fixer' || job.fix.enabled
      // applies() may read ctx.options too (and log, run tools): while it is asked, it is the current stage.
      const before = current.stage
      current.stage = entry.id
      const wanted = allowed && (entry.stage.applies ? Boolean(await entry.stage.applies(context)) : true)
      current.stage = before
      if (wanted && !(single && steps.length > 0)) steps.push({id: entry.id, run: () => entry.stage.run(context)})
      else skipped.push(entry.id)
    }
    return {skipped, steps}
  }

  emit({input: job.input, jobId, type: 'job:start'})
  try {
    // Before anything is created or read: every stage's options, validated against its schema (defaults applied).
    stageOptions = await resolveStageOptions(options.registry, job)
    await mkdir(job.outputDir, {recursive: true}).catch((error: unknown) => {
      throw new H2KError('H2K_OUTPUT_FAILED', `Cannot create the output directory ${job.outputDir}: ${(error as Error).message}`, {cause: error, phase: 'setup'})
    })
    const workRoot = job.workDir ?? job.outputDir
    if (job.workDir) {
      await mkdir(job.workDir, {recursive: true}).catch((error: unknown) => {
        throw new H2KError('H2K_OUTPUT_FAILED', `Cannot create the work directory ${job.workDir}: ${(error as Error).message}`, {cause: error, phase: 'setup'})
      })
    }
    workDir = await mkdtemp(join(workRoot, `.hyper2kvm-${jobId}-`))
    const changes = new ChangeList()
    const log = (level: 'debug' | 'info' | 'warn') => (message: string, fields?: Record<string, unknown>) =>
      emit({fields: {...fields, stage: current.stage}, level, message, type: 'log'})
    let loaded: Source | undefined
    const guest = new JobGuestAccess({
      accel: job.accel,
      records: options.childRecords,
      report: (message) => context.report({message}),
      signal,
      source: () => loaded,
      warn: (code, message) => context.warn(code, message),
      workDir,
    })
    guestAccess = guest
    const context: StageContext = {
      changes,
      dryRun: options.stopAfter === 'fix',
      guest,
      get options() {
        return stageOptions.get(current.stage) ?? {}
      },
      // A stage states what a tool may see (sandbox view); whether the sandbox is on is the job's decision.
      exec: (file, args, toolOptions) =>
        runTool(file, args, {phase: current.phase, stage: current.stage, ...toolOptions, sandbox: job.sandbox ? toolOptions?.sandbox : false, signal}),
      // qemu-img info for a stage: the job's sandbox decision and signal, the files the loader vouched for.
      imageInfo: (spec, infoOptions) =>
        imageInfo(spec, {files: infoOptions?.files, phase: current.phase, sandbox: job.sandbox, signal, stage: current.stage}),
      job,
      jobId,
      log: {debug: log('debug'), info: log('info'), warn: log('warn')},
      outputs: [],
      report: (progress) => emit({phase: current.phase, progress, stage: current.stage, type: 'progress'}),
      signal,
      verification: {},
      warn(code, message) {
        const warning = {code, message, stage: current.stage}
        warnings.push(warning)
        emit({type: 'warning', warning})
      },
      workDir,
    }
    ctx = context
    // The registry's own warnings (an `after:` naming no registered stage) belong in every job's report.
    for (const warning of options.registry.warnings) {
      const record = {code: warning.code, message: warning.message, stage: warning.stage}
      warnings.push(record)
      emit({type: 'warning', warning: record})
    }
    // Before anything reads the input: a sandbox that cannot be built fails the job now, with its own code.
    if (job.sandbox) await sandboxRunner()
    else context.warn('SANDBOX_DISABLED', 'qemu runs without the bubblewrap sandbox (--no-sandbox / sandbox: false): a qemu parser bug could read any file this user can read.')

    // LOAD: probe, the chosen loader, then the pipeline's own look at every disk.
    const input = await readProbeInput(job.input)
    const choice = await selectLoader(options.registry, input, (loader, error) => context.log.warn(`probe of ${loader} failed: ${(error as Error).message}`))
    const loaderContext: LoaderContext = Object.assign(Object.create(context) as StageContext, {claim: choice.claim, input})
    await runPhase('load', [
      {
        id: choice.loader.id,
        run: async () => {
          loaded = await choice.loader.stage.run(loaderContext)
          if (!loaded || !Array.isArray(loaded.disks) || loaded.disks.length === 0) {
            throw new H2KError('H2K_INPUT_UNRECOGNIZED', `${choice.loader.id} found no disk in ${job.input}.`)
          }
        },
      },
      {id: 'core:describe', run: () => describeDisks(loaded!, signal, job.sandbox)},
    ])
    const source = loaded!
    context.source = source
    // An existing output or report fails the job now, before INSPECT and FIX start an appliance; CONVERT plans
    // again (one may have appeared meanwhile).
    if (options.stopAfter === undefined) {
      current.stage = 'core:plan'
      await planOutputs(job, source)
    }
    const describeJob = (): Omit<JobResult, 'outputs' | 'status'> => ({
      changes: changes.all,
      disks: source.disks.map((d) => ({files: d.files, format: d.format, label: d.label, subformat: d.subformat, virtualSize: d.virtualSize})),
      durationMs: Date.now() - startedAt.getTime(),
      input: {
        format: source.format,
        loader: choice.loader.id,
        notes: source.notes ?? [],
        path: job.input,
        plugin: choice.loader.plugin.name,
        subformat: source.subformat,
        claim: choice.claim.by,
      },
      inspection: context.inspection,
      jobId,
      sandbox: job.sandbox ? 'bwrap' : 'none',
      stages,
      startedAt: startedAt.toISOString(),
      verification: context.verification,
      vm: source.vm,
      warnings,
    })

    // INSPECT and FIX share one appliance on overlays; it is shut down (flushed) before CONVERT reads them.
    const inspectors = await pipelineSteps('inspector', context)
    await runPhase('inspect', inspectors.steps, inspectors.skipped)
    if (options.stopAfter === 'inspect') {
      await guest.close()
      emit({status: 'succeeded', type: 'job:end'})
      return {...describeJob(), outputs: [], status: 'inspected'}
    }
    const fixers = await pipelineSteps('fixer', context)
    const fixFailed = (error: H2KError): string | undefined => (job.fix.continueOnError ? `${error.stage ?? 'a fixer'} failed and was skipped (--continue-on-fix-error): ${error.message}` : undefined)
    await runPhase(
      'fix',
      fixers.steps.map((step) => ({...step, tolerate: fixFailed})),
      fixers.skipped,
    )
    await guest.close()
    if (options.stopAfter === 'fix') {
      emit({status: 'succeeded', type: 'job:end'})
      return {...describeJob(), outputs: [], status: 'planned'}
    }

    // CONVERT: plan names, refuse conflicts and impossible sizes before writing anything.
    current.phase = 'convert'
    current.stage = 'core:plan'
    context.outputs = await planOutputs(job, source)
    if (!job.skipSpaceCheck) await ensureFreeSpace(job.outputDir, context.outputs, job.format)
    const converters = await pipelineSteps('converter', context, true)
    if (converters.steps.length === 0) throw new H2KError('H2K_PLUGIN_FAILED', 'No converter stage is registered or applies to this job.', {phase: 'convert'})
    await runPhase('convert', converters.steps, converters.skipped)

    // VERIFY, then the libvirt domain's text, checksums, the all-or-nothing rename, the domain and the report.
    const report = reportPath(job, source)
    const verifiers = await pipelineSteps('verifier', context)
    const outputs: OutputRecord[] = []
    const emitLibvirt = job.emit?.includes('libvirt') === true
    let xml: string | undefined
    await runPhase('verify', [
      ...verifiers.steps,
      // Built before anything is committed: a value it refuses fails the job with nothing placed.
      ...(emitLibvirt
        ? [
            {
              id: 'core:libvirt',
              run: async () => {
                const domain = await libvirtDomain({inspection: context.inspection, job, outputs: context.outputs, source})
                for (const warning of domain.warnings) context.warn(warning.code, warning.message)
                xml = domain.xml
              },
            },
          ]
        : []),
      {
        id: 'core:commit',
        run: async () => {
          const total = context.outputs.reduce((sum, plan) => sum + (plan.disk.virtualSize ?? 0), 0)
          for (const plan of context.outputs) {
            const sha256 = job.checksum
              ? await sha256File(plan.partPath, signal, (bytes) => context.report({bytesDone: bytes, bytesTotal: total, message: 'sha256'}))
              : undefined
            outputs.push({
              bytesOnDisk: await bytesOnDisk(plan.partPath),
              compression: job.compress ? job.compression : undefined,
              disk: plan.disk.label,
              format: job.format,
              path: plan.finalPath,
              sha256,
              virtualSize: plan.disk.virtualSize ?? 0,
            })
          }
          await commitOutputs(context.outputs, job.overwrite)
          committed = true
          if (xml !== undefined) {
            // Placed like the report: never replacing a file without --overwrite, even one that appeared meanwhile.
            const path = domainXmlPath(job, source)
            await writeFileAtomic(path, xml, {replace: job.overwrite})
            placedXml = path
          }
        },
      },
    ], verifiers.skipped)
    const result: JobResult = {...describeJob(), outputs, report, status: 'succeeded', ...(placedXml === undefined ? {} : {libvirtXml: placedXml})}
    await writeFileAtomic(report, `${JSON.stringify(jobResultJson(result), null, 2)}\n`, {replace: job.overwrite})
    emit({status: 'succeeded', type: 'job:end'})
    return result
  } catch (error) {
    // A job that fails after its outputs were committed (the report could not be written) takes them
    // back: outputs without their report would look like a success.
    if (committed && ctx) await Promise.all([...ctx.outputs.map((plan) => plan.finalPath), ...(placedXml === undefined ? [] : [placedXml])].map((path) => rm(path, {force: true})))

    const mapped = mapForeignError(signal.aborted ? new H2KError('H2K_CANCELLED', 'The job was cancelled.', {cause: error}) : error, {phase: current.phase, stage: current.stage})
    if (ctx) await discardParts(ctx.outputs)
    emit({error: mapped, status: 'failed', type: 'job:end'})
    throw mapped
  } finally {
    await guestAccess?.close()
    if (workDir) await rm(workDir, {force: true, recursive: true})
  }
}
