import {Listr, ListrLogger, ProcessOutput} from 'listr2'

import type {JobEvent, JobObserver} from '@hyper2kvm/plugin-api'
import {deferred, type PhaseTask, PhaseTasks} from './phase-tasks.js'
import {fixZeroTerminalWidth} from './terminal-width.js'

/** One job's line in the batch list: it starts when the job does, its phases nested under it. */
class JobLine {
  readonly started = deferred<'started' | 'skipped'>()
  readonly phases = new PhaseTasks()
  task: PhaseTask | undefined

  onEvent(event: JobEvent): void {
    if (event.type === 'job:start') this.started.settle('started')
    if (event.type === 'job:end' && event.error && this.task) this.task.title = `${this.task.title}: ${event.error.code}`
    this.phases.onEvent(event)
  }

  /** The job never ran (skipped or cancelled before it started). */
  close(): void {
    this.started.settle('skipped')
    this.phases.close()
  }
}

/**
 * Terminal renderer for `batch`: listr2 nested lists, batch → one line per job → its phases, on stderr.
 * Each job's events go to its own observer; finish() settles jobs that never started.
 */
export class BatchListrRenderer {
  private readonly jobs = new Map<string, JobLine>()
  private readonly run: Promise<unknown>

  constructor(names: readonly string[]) {
    for (const name of names) this.jobs.set(name, new JobLine())
    fixZeroTerminalWidth()
    const list = new Listr(
      names.map((name) => ({
        task: async (_ctx: unknown, task: PhaseTask) => {
          const line = this.jobs.get(name)!
          if ((await line.started.promise) === 'skipped') {
            task.skip(`${name}: not run`)
            return
          }
          line.task = task
          return task.newListr(line.phases.tasks(), {exitOnError: true, rendererOptions: {collapseSubtasks: true}})
        },
        title: name,
      })),
      {
        concurrent: true,
        exitOnError: false,
        forceTTY: true,
        registerSignalListeners: false,
        renderer: 'default',
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
