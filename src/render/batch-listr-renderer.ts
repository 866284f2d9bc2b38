import {type DefaultRenderer, Listr, ListrLogger, type ListrTaskWrapper, ProcessOutput, type SimpleRenderer} from 'listr2'

import {type JobEvent, type JobObserver, PHASES, type PhaseName} from '../stages/job-events.js'
import {ProgressMeter} from './progress-meter.js'

type Task = ListrTaskWrapper<unknown, typeof DefaultRenderer, typeof SimpleRenderer>
type Settled = 'ok' | 'skipped' | 'failed'

const TITLES: Record<PhaseName, string> = {convert: 'Convert', fix: 'Fix guest', inspect: 'Inspect guest', load: 'Load input', verify: 'Verify output'}

function deferred<T>(): {promise: Promise<T>; settle: (value: T) => void} {
  let settle!: (value: T) => void
  const promise = new Promise<T>((resolve) => {
    settle = resolve
  })
  return {promise, settle}
}

class JobState {
  readonly started = deferred<'started' | 'skipped'>()
  readonly phases = new Map(PHASES.map((phase) => [phase, {...deferred<Settled>(), task: undefined as Task | undefined}]))
  readonly meter = new Map<string, ProgressMeter>()
  readonly settled = new Map<PhaseName, Settled>()
  task: Task | undefined

  settle(phase: PhaseName, status: Settled): void {
    if (this.settled.has(phase)) return
    this.settled.set(phase, status)
    this.phases.get(phase)?.settle(status)
  }

  onEvent(event: JobEvent): void {
    switch (event.type) {
      case 'job:start':
        this.started.settle('started')
        break
      case 'phase:end':
        this.settle(event.phase, event.status)
        break
      case 'stage:start': {
        const phase = this.phases.get(event.phase)
        if (phase?.task) phase.task.title = `${TITLES[event.phase]}: ${event.stage}`
        this.meter.set(event.stage, new ProgressMeter())
        break
      }
      case 'progress': {
        const task = this.phases.get(event.phase)?.task
        const line = this.meter.get(event.stage)?.update(event.progress)
        if (task && line) task.output = line
        break
      }
      case 'job:end': {
        // A failure before any phase ended (e.g. the probe) marks the first open phase failed, the rest skipped.
        let failureShown = [...this.settled.values()].includes('failed')
        if (this.task) this.task.title = event.error ? `${this.task.title}: ${event.error.code}` : this.task.title
        for (const phase of PHASES) {
          if (this.settled.has(phase)) continue
          this.settle(phase, event.status === 'failed' && !failureShown ? 'failed' : 'skipped')
          failureShown = true
        }
        break
      }
      default:
        break
    }
  }

  /** The job never ran (skipped or cancelled before it started). */
  close(): void {
    this.started.settle('skipped')
    for (const phase of PHASES) this.settle(phase, 'skipped')
  }
}

/**
 * Terminal renderer for `batch`: listr2 nested lists, batch → one line per job → its phases, on stderr.
 * Each job's events go to its own observer; finish() settles jobs that never started.
 */
export class BatchListrRenderer {
  private readonly jobs = new Map<string, JobState>()
  private readonly run: Promise<unknown>

  constructor(names: readonly string[], options: {renderer?: 'default' | 'test'} = {}) {
    for (const name of names) this.jobs.set(name, new JobState())
    const list = new Listr(
      names.map((name) => ({
        task: async (_ctx: unknown, task: Task) => {
          const state = this.jobs.get(name)!
          if ((await state.started.promise) === 'skipped') {
            task.skip(`${name}: not run`)
            return
          }
          state.task = task
          const phases = task.newListr(
            PHASES.map((phase) => ({
              task: async (_c: unknown, sub: Task) => {
                const entry = state.phases.get(phase)!
                entry.task = sub
                const status = await entry.promise
                if (status === 'skipped') sub.skip(`${TITLES[phase]}: nothing to do`)
                if (status === 'failed') throw new Error(`${TITLES[phase]} failed`)
                sub.title = TITLES[phase]
              },
              title: TITLES[phase],
            })),
            {exitOnError: true, rendererOptions: {collapseSubtasks: true}},
          )
          return phases
        },
        title: name,
      })),
      {
        concurrent: true,
        exitOnError: false,
        forceTTY: options.renderer !== 'test',
        registerSignalListeners: false,
        renderer: options.renderer ?? 'default',
        rendererOptions: {logger: new ListrLogger({processOutput: new ProcessOutput(process.stderr, process.stderr)})},
      },
    )
    this.run = list.run().catch(() => undefined)
  }

  observerFor(name: string): JobObserver {
    const state = this.jobs.get(name)
    return {onEvent: (event) => state?.onEvent(event)}
  }

  async finish(): Promise<void> {
    for (const state of this.jobs.values()) state.close()
    await this.run
  }
}
