import type {JobObserver, LogLevel} from '../stages/job-events.js'
import {PlainRenderer} from './plain-renderer.js'

export interface Renderer extends JobObserver {
  finish(): Promise<void>
}

/**
 * listr2 when stderr is a terminal, plain lines otherwise; `progress: false` keeps only warnings. listr2 and
 * its dependencies are imported only when they are chosen: logs, pipes, CI and --json never need them.
 */
export async function chooseRenderer(options: {progress: boolean; logLevel: LogLevel | 'error'}): Promise<Renderer> {
  if (options.progress && process.stderr.isTTY) {
    const {ListrRenderer} = await import('./listr-renderer.js')
    const listr = new ListrRenderer()
    return {finish: () => listr.finish(), onEvent: (event) => listr.onEvent(event)}
  }
  const plain = new PlainRenderer({write: (line) => process.stderr.write(`${line}\n`)}, options.logLevel)
  return {
    finish: async () => {},
    onEvent: (event) => {
      if (options.progress || event.type === 'warning') plain.onEvent(event)
    },
  }
}
