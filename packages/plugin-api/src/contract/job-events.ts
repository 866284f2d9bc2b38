import type {H2KError} from '../errors/h2k-error.js'
import type {JobWarning, ProgressUpdate} from './stage-types.js'

export const PHASES = ['load', 'inspect', 'fix', 'convert', 'verify'] as const
export type PhaseName = (typeof PHASES)[number]
export type StepStatus = 'ok' | 'skipped' | 'failed'
export type LogLevel = 'debug' | 'info' | 'warn'

/** Everything a running job tells the outside world; renderers, the daemon and tests subscribe to these. */
export type JobEvent =
  | {type: 'job:start'; jobId: string; input: string}
  | {type: 'phase:start'; phase: PhaseName; stages: string[]}
  | {type: 'phase:end'; phase: PhaseName; status: StepStatus; durationMs: number}
  | {type: 'stage:start'; phase: PhaseName; stage: string}
  | {type: 'stage:end'; phase: PhaseName; stage: string; status: StepStatus; durationMs: number}
  | {type: 'progress'; phase: PhaseName; stage: string; progress: ProgressUpdate}
  | {type: 'log'; level: LogLevel; message: string; fields?: Record<string, unknown>}
  | {type: 'warning'; warning: JobWarning}
  | {type: 'job:end'; status: 'succeeded' | 'failed'; error?: H2KError}

export interface JobObserver {
  onEvent(event: JobEvent): void
}

export const silentObserver: JobObserver = {onEvent: () => {}}
