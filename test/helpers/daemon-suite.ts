import {type RunningDaemon, killAll} from './daemon-process.js'
import {makeTempDir} from './temp-dir.js'

export interface DaemonSuite {
  /** The suite's temporary directory (made in its `before` hook, removed in its `after` hook). */
  readonly dir: string
  /** Push every daemon a test starts: they are SIGKILLed after each test (or after all: `killAfter: 'all'`). */
  readonly daemons: RunningDaemon[]
}

/**
 * The hooks every daemon test file needs, wired once: call it inside `describe` before the file's own
 * hooks (mocha runs hooks in registration order, so the daemons are gone before the file's receivers
 * close). `killAfter: 'all'` for a suite whose tests share one daemon.
 */
export function daemonSuite(prefix: string, options: {killAfter?: 'each' | 'all'} = {}): DaemonSuite {
  let temp: ReturnType<typeof makeTempDir> | undefined
  const daemons: RunningDaemon[] = []
  before(() => {
    temp = makeTempDir(prefix)
  })
  if (options.killAfter === 'all') after(() => killAll(daemons))
  else afterEach(() => killAll(daemons))
  after(() => temp?.cleanup())
  return {
    daemons,
    get dir(): string {
      if (temp === undefined) throw new Error('daemonSuite: the directory exists from the suite\'s before hook on')
      return temp.dir
    },
  }
}
