import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type DaemonConfig, loadDaemonConfig} from '../../src/daemon/config.js'
import type {DaemonEvent} from '../../src/daemon/daemon-events.js'
import {JobStore} from '../../src/daemon/store.js'
import {ScheduleStore} from '../../src/schedule/schedule-store.js'
import {Scheduler} from '../../src/schedule/scheduler.js'
import {DaemonJobService} from '../../src/service/job-service.js'
import {FakeClock} from './fake-clock.js'

/**
 * A scheduler as the daemon builds it — the real job store (SQLite in a temporary directory), the real
 * job service, the real schedule store — with a fake clock and no worker pool: submitted jobs stay
 * queued until a test finishes them (`finish`).
 */
export class ScheduleHarness {
  readonly events: DaemonEvent[] = []
  readonly logs: string[] = []
  store!: JobStore
  schedules!: ScheduleStore
  scheduler!: Scheduler

  private constructor(
    readonly dir: string,
    readonly config: DaemonConfig,
    readonly clock: FakeClock,
  ) {}

  /** A daemon configuration over `dir` (inputs under dir/disks, allowed), a store opened, a scheduler built (not started). */
  static async open(dir: string, startMs: number, config?: DaemonConfig): Promise<ScheduleHarness> {
    mkdirSync(join(dir, 'disks'), {recursive: true})
    const cfg = config ?? {...(await loadDaemonConfig({'output-dir': join(dir, 'out'), 'watch-dir': join(dir, 'queue')})), allowedInputDirs: [join(dir, 'disks')]}
    const h = new ScheduleHarness(dir, cfg, new FakeClock(startMs))
    h.reopen()
    return h
  }

  /** Open the store again with a new scheduler (a daemon restart); the clock stays where the test put it. */
  reopen(): void {
    this.store = JobStore.open(this.config.outputDir)
    const emit = (event: DaemonEvent): void => void this.events.push(event)
    const log = (level: string, event: string, fields: Record<string, unknown> = {}, message = ''): void => void this.logs.push(`${level} ${event} ${JSON.stringify(fields)} ${message}`)
    const jobs = new DaemonJobService({abortRunning: () => false, config: () => this.config, emit, log, settle: async () => {}, store: this.store, wake: () => {}})
    this.schedules = new ScheduleStore(this.store.sql)
    this.scheduler = new Scheduler({allowedInputDirs: () => this.config.allowedInputDirs, clock: this.clock, emit, log, store: this.schedules, submit: (document, options) => jobs.submit(document, options)})
  }

  async restart(): Promise<void> {
    await this.scheduler.stop()
    this.store.close()
    this.reopen()
  }

  /** A small file under the allowed directory (the job service stats inputs; nothing converts here). */
  disk(name: string): string {
    const path = join(this.dir, 'disks', name)
    writeFileSync(path, Buffer.alloc(4096))
    return path
  }

  async advanceTo(iso: string): Promise<void> {
    await this.clock.advanceTo(Date.parse(iso), () => this.scheduler.idle())
  }

  /** Mark every unfinished job succeeded (what the pool would do). */
  finishAll(): void {
    for (const row of this.store.unfinished()) this.store.transition(row.id, 'succeeded', 'finished by the test')
  }

  runs(id: string): Array<{outcome: string; scheduledFor: string; jobs: number; override: boolean}> {
    return this.schedules
      .runs(id, 1000)
      .reverse()
      .map((r) => ({jobs: r.jobIds.length, outcome: r.outcome, override: r.overrideWindow, scheduledFor: new Date(r.scheduledFor).toISOString()}))
  }

  close(): void {
    this.store.close()
  }
}
