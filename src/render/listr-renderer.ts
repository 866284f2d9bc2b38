import {Listr, ListrLogger, ProcessOutput} from 'listr2'

import type {JobEvent, JobObserver} from '@hyper2kvm/plugin-api'
import {PhaseTasks} from './phase-tasks.js'
import {fixZeroTerminalWidth} from './terminal-width.js'

/**
 * Terminal renderer for one job: a listr2 task per phase (load → inspect → fix → convert → verify) on
 * stderr, the running stage and its progress in the task line. Stdout stays clean for --json.
 */
export class ListrRenderer implements JobObserver {
  private readonly phases = new PhaseTasks()
  private readonly run: Promise<unknown>

  constructor() {
    fixZeroTerminalWidth()
    const list = new Listr<unknown, 'default', 'simple'>(this.phases.tasks(), {
      exitOnError: true,
      forceTTY: true,
      registerSignalListeners: false,
      renderer: 'default',
      rendererOptions: {logger: new ListrLogger({processOutput: new ProcessOutput(process.stderr, process.stderr)})},
    })
    this.run = list.run().catch(() => undefined)
  }

  onEvent(event: JobEvent): void {
    this.phases.onEvent(event)
  }

  /** Wait until the terminal shows the final state. */
  async finish(): Promise<void> {
    await this.run
  }
}
