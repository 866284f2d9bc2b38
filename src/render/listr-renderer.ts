import {type DefaultRenderer, Listr, ListrLogger, type ListrTaskWrapper, ProcessOutput, type SimpleRenderer} from 'listr2'

type PhaseTask = ListrTaskWrapper<unknown, typeof DefaultRenderer, typeof SimpleRenderer>

import {type JobEvent, type JobObserver, PHASES, type PhaseName} from '../stages/job-events.js'
import {ProgressMeter} from './progress-meter.js'

const TITLES: Record<PhaseName, string> = {
  convert: 'Convert',
  fix: 'Fix guest',
  inspect: 'Inspect guest',
  load: 'Load input',
  verify: 'Verify output',
}

interface PhaseState {
  task?: PhaseTask
  settle?: (status: 'ok' | 'skipped' | 'failed') => void
  done: Promise<'ok' | 'skipped' | 'failed'>
}

/**
 * Terminal renderer: a listr2 task per phase (load → inspect → fix → convert → verify) on stderr, the
 * running stage and its progress (bytes, percent, rate, ETA) in the task line. Stdout stays clean for --json.
 */
export class ListrRenderer implements JobObserver {
  private readonly phases = new Map<PhaseName, PhaseState>()
  private readonly meter = new Map<string, ProgressMeter>()
  private readonly run: Promise<unknown>

  constructor() {
    for (const phase of PHASES) {
      let settle!: PhaseState['settle']
      const done = new Promise<'ok' | 'skipped' | 'failed'>((resolve) => {
        settle = resolve
      })
      this.phases.set(phase, {done, settle})
    }
    const list = new Listr(
      PHASES.map((phase) => ({
        task: async (_ctx: unknown, task: PhaseTask) => {
          const state = this.phases.get(phase)!
          state.task = task
          const status = await state.done
          if (status === 'skipped') task.skip(`${TITLES[phase]}: nothing to do`)
          if (status === 'failed') throw new Error(`${TITLES[phase]} failed`)
          task.title = TITLES[phase]
        },
        title: TITLES[phase],
      })),
      {
        exitOnError: true,
        forceTTY: true,
        registerSignalListeners: false,
        renderer: 'default',
        rendererOptions: {logger: new ListrLogger({processOutput: new ProcessOutput(process.stderr, process.stderr)})},
      },
    )
    this.run = list.run().catch(() => undefined)
  }

  onEvent(event: JobEvent): void {
    switch (event.type) {
      case 'phase:end':
        this.phases.get(event.phase)?.settle?.(event.status)
        break
      case 'stage:start': {
        const task = this.phases.get(event.phase)?.task
        if (task) {
          task.title = `${TITLES[event.phase]}: ${event.stage}`
          task.output = ''
        }
        this.meter.set(event.stage, new ProgressMeter())
        break
      }
      case 'progress': {
        const task = this.phases.get(event.phase)?.task
        const line = this.meter.get(event.stage)?.update(event.progress)
        if (task && line) task.output = line
        break
      }
      case 'warning': {
        const task = [...this.phases.values()].find((s) => s.task)?.task
        if (task) task.output = `warning ${event.warning.code}: ${event.warning.message}`
        break
      }
      case 'job:end':
        // Phases that never started (after a failure) are settled as skipped so the list can finish.
        for (const state of this.phases.values()) state.settle?.(event.status === 'failed' ? 'failed' : 'skipped')
        break
      default:
        break
    }
  }

  /** Wait until the terminal shows the final state. */
  async finish(): Promise<void> {
    await this.run
  }
}
