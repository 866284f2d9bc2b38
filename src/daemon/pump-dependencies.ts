import type {JobRow, JobStore} from './store.js'

/**
 * The dependencies of the jobs one pump looks at, read in one statement for the whole pump. The pump asks
 * about every waiting job (a failed parent, then the dependency gate): one read per job and per question made
 * a burst of N queued jobs cost 2 N statements on every pump, which a PostgreSQL store pays in round trips.
 * Read after the pump's list of unfinished jobs: a job and its dependencies are inserted in one transaction,
 * so every job of the list finds its own. A job outside the list (or no pump running) is read from the store.
 */
export class PumpDependencies {
  private covered?: ReadonlySet<string>
  private byJob = new Map<string, string[]>()

  constructor(private readonly store: Pick<JobStore, 'dependenciesOf' | 'dependenciesOfUnfinished' | 'job'>) {}

  /** Run `fn` (one pump over `rows`, the unfinished jobs just read) with their dependencies read once. */
  during<T>(rows: readonly JobRow[], fn: () => T): T {
    this.byJob = this.store.dependenciesOfUnfinished()
    this.covered = new Set(rows.map((row) => row.id))
    try {
      return fn()
    } finally {
      this.covered = undefined
      this.byJob = new Map()
    }
  }

  /** The ids this job waits for. */
  dependenciesOf(id: string): string[] {
    if (this.covered?.has(id)) return [...(this.byJob.get(id) ?? [])]
    return this.store.dependenciesOf(id)
  }

  job(id: string): JobRow | undefined {
    return this.store.job(id)
  }
}
