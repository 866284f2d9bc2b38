import type {JobEvent, JobObserver, LogLevel} from '@hyper2kvm/plugin-api'
import {escapeControl} from './escape-control.js'
import {ProgressMeter} from './progress-meter.js'

const LEVELS: Record<LogLevel | 'error', number> = {debug: 0, error: 3, info: 1, warn: 2}

export interface LineWriter {
  write(line: string): void
}

/**
 * For logs and pipes (stderr is not a terminal): one line per step, progress at most every 10% or 10 s,
 * so CI logs and journald stay readable. Messages may quote a guest's file names (a fixer's "changed <path>"):
 * their control characters are escaped, so each event stays one line and no terminal sequence gets through.
 */
export class PlainRenderer implements JobObserver {
  private meter = new ProgressMeter()
  private lastPercent = -100
  private lastTime = 0

  constructor(
    private readonly out: LineWriter,
    private readonly logLevel: LogLevel | 'error',
    private readonly prefix = '',
  ) {}

  onEvent(event: JobEvent): void {
    const p = this.prefix
    switch (event.type) {
      case 'stage:start':
        this.meter = new ProgressMeter()
        this.lastPercent = -100
        this.out.write(`${p}[${event.phase}] ${event.stage} ...`)
        break
      case 'stage:end':
        this.out.write(`${p}[${event.phase}] ${event.stage} ${event.status} (${event.durationMs} ms)`)
        break
      case 'progress': {
        const percent = event.progress.percent ?? 0
        const now = performance.now()
        const line = this.meter.update(event.progress, now)
        const finished = percent >= 100 && this.lastPercent < 100
        if (finished || percent - this.lastPercent >= 10 || now - this.lastTime >= 10_000) {
          this.lastPercent = percent
          this.lastTime = now
          this.out.write(`${p}[${event.phase}] ${event.stage} ${escapeControl(line)}`)
        }
        break
      }
      case 'warning':
        this.out.write(`${p}warning ${event.warning.code}: ${escapeControl(event.warning.message)}`)
        break
      case 'log':
        if (LEVELS[event.level] >= LEVELS[this.logLevel]) this.out.write(`${p}${event.level}: ${escapeControl(event.message)}`)
        break
      default:
        break
    }
  }
}
