import {Session} from 'node:inspector'

interface Range {
  startOffset: number
  endOffset: number
  count: number
}
interface ScriptCoverage {
  scriptId: string
  url: string
  functions: Array<{ranges: Range[]}>
}

/** libFuzzer-style hit-count buckets: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+. */
function bucket(count: number): number {
  if (count <= 3) return count
  if (count < 8) return 4
  if (count < 16) return 5
  if (count < 32) return 6
  if (count < 128) return 7
  return 8
}

/**
 * Coverage feedback from V8 itself (block coverage through the inspector of this thread): after each
 * input, which code blocks of the project ran and how often (bucketed). No instrumentation step, so it
 * works on the TypeScript sources as tsx loads them. Counters reset on every take.
 */
export class BlockCoverage {
  private readonly session = new Session()
  private readonly seen = new Set<string>()

  /** `include` decides which scripts count (e.g. the project's own sources, not node_modules). */
  constructor(private readonly include: (url: string) => boolean) {
    this.session.connect()
    this.post('Profiler.enable')
    this.post('Profiler.startPreciseCoverage', {callCount: true, detailed: true})
  }

  /** Blocks (with hit-count bucket) seen so far. */
  get size(): number {
    return this.seen.size
  }

  /** Take the counters since the last call; returns how many block/bucket pairs were never seen before. */
  takeNew(): number {
    const result = this.post('Profiler.takePreciseCoverage') as {result: ScriptCoverage[]}
    let fresh = 0
    for (const script of result.result) {
      if (!this.include(script.url)) continue
      for (const fn of script.functions) {
        for (const range of fn.ranges) {
          if (range.count === 0) continue
          const key = `${script.scriptId}:${range.startOffset}:${range.endOffset}:${bucket(range.count)}`
          if (!this.seen.has(key)) {
            this.seen.add(key)
            fresh++
          }
        }
      }
    }
    return fresh
  }

  close(): void {
    this.session.disconnect()
  }

  /** The inspector answers a session of the same thread synchronously. */
  private post(method: string, params?: object): unknown {
    let answer: unknown
    let failure: Error | null = null
    this.session.post(method, params ?? {}, (error, result) => {
      failure = error
      answer = result
    })
    if (failure) throw failure
    return answer
  }
}
