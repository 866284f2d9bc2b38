/**
 * job.progress is noisy (every copy step): each hook gets at most one per job per its `progress_interval`.
 * Forgotten once the job ends, so a long-running daemon keeps no state for finished jobs.
 */
export class ProgressThrottle {
  /** job id → hook id → when its last progress was let through (ms). */
  private readonly last = new Map<string, Map<string, number>>()

  /** Whether this job's progress may go to this hook at `now` (and, if so, counts it as sent). */
  allow(hook: string, job: string, intervalMs: number, now: number): boolean {
    const hooks = this.last.get(job) ?? new Map<string, number>()
    const previous = hooks.get(hook)
    if (previous !== undefined && now - previous < intervalMs) return false
    hooks.set(hook, now)
    this.last.set(job, hooks)
    return true
  }

  forget(job: string): void {
    this.last.delete(job)
  }

  /** Jobs with a remembered progress (for tests and leak checks). */
  get size(): number {
    return this.last.size
  }
}
