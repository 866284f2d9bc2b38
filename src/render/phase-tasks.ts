import type {DefaultRenderer, ListrTask, ListrTaskWrapper, SimpleRenderer} from 'listr2'

import {type JobEvent, PHASES, type PhaseName} from '@hyper2kvm/plugin-api'
import {ProgressMeter} from './progress-meter.js'
import {escapeControl} from './escape-control.js'

export type PhaseTask = ListrTaskWrapper<unknown, typeof DefaultRenderer, typeof SimpleRenderer>
type Settled = 'ok' | 'skipped' | 'failed'

export const PHASE_TITLES: Record<PhaseName, string> = {convert: 'Convert', fix: 'Fix guest', inspect: 'Inspect guest', load: 'Load input', verify: 'Verify output'}

export function deferred<T>(): {promise: Promise<T>; settle: (value: T) => void} {
  let settle!: (value: T) => void
  const promise = new Promise<T>((resolve) => {
    settle = resolve
  })
  return {promise, settle}
}

/**
 * One job's phases (load → inspect → fix → convert → verify) as listr2 tasks, driven by the job's events:
 * the running stage in the task title, its progress (bytes, percent, rate, ETA) and warnings in the task
 * output. `convert` shows it as the whole list, `batch` nests it under each job's line.
 */
export class PhaseTasks {
  private readonly phases = new Map(PHASES.map((phase) => [phase, {...deferred<Settled>(), task: undefined as PhaseTask | undefined}]))
  private readonly meter = new Map<string, ProgressMeter>()
  private readonly settled = new Map<PhaseName, Settled>()

  /** The listr2 tasks, one per phase; each ends when its phase does. */
  tasks(): Array<ListrTask<unknown, typeof DefaultRenderer, typeof SimpleRenderer>> {
    return PHASES.map((phase) => ({
      task: async (_ctx: unknown, task: PhaseTask) => {
        const entry = this.phases.get(phase)!
        entry.task = task
        const status = await entry.promise
        if (status === 'skipped') task.skip(`${PHASE_TITLES[phase]}: nothing to do`)
        if (status === 'failed') throw new Error(`${PHASE_TITLES[phase]} failed`)
        task.title = PHASE_TITLES[phase]
      },
      title: PHASE_TITLES[phase],
    }))
  }

  private settle(phase: PhaseName, status: Settled): void {
    if (this.settled.has(phase)) return
    this.settled.set(phase, status)
    this.phases.get(phase)?.settle(status)
  }

  onEvent(event: JobEvent): void {
    switch (event.type) {
      case 'phase:end':
        this.settle(event.phase, event.status)
        break
      case 'stage:start': {
        const task = this.phases.get(event.phase)?.task
        if (task) {
          task.title = `${PHASE_TITLES[event.phase]}: ${event.stage}`
          task.output = ''
        }
        this.meter.set(event.stage, new ProgressMeter())
        break
      }
      case 'progress': {
        const task = this.phases.get(event.phase)?.task
        const line = this.meter.get(event.stage)?.update(event.progress)
        if (task && line) task.output = escapeControl(line)
        break
      }
      case 'warning': {
        const open = PHASES.find((phase) => !this.settled.has(phase) && this.phases.get(phase)?.task)
        const task = open === undefined ? undefined : this.phases.get(open)?.task
        if (task) task.output = escapeControl(`warning ${event.warning.code}: ${event.warning.message}`)
        break
      }
      case 'job:end': {
        // A failure before any phase ended (e.g. the probe) marks the first open phase failed, the rest skipped.
        let failureShown = [...this.settled.values()].includes('failed')
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

  /** The job never ran: every phase is skipped. */
  close(): void {
    for (const phase of PHASES) this.settle(phase, 'skipped')
  }
}
