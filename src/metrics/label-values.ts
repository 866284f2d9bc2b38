/**
 * Label values come only from bounded sets: a label value made from a file name (or anything a dropper
 * chooses) would let uploads create unbounded series and put untrusted text in every scrape.
 */
import {isErrorCode, PHASES} from '@hyper2kvm/plugin-api'

/** An error code from the catalog, or `H2K_INTERNAL` for anything else. */
export function errorCodeLabel(code: string): string {
  return isErrorCode(code) ? code : 'H2K_INTERNAL'
}

const PHASE_SET: ReadonlySet<string> = new Set(['setup', ...PHASES, 'report'])

/** A pipeline phase, or `other`. */
export function phaseLabel(phase: string | undefined): string {
  return phase !== undefined && PHASE_SET.has(phase) ? phase : 'other'
}

/**
 * Stage ids come from the stage registry (core and installed plugins): a bounded set in practice, but a
 * plugin could register many. Ids keep their own name while they look like ids and there are at most
 * `limit` distinct ones; anything else is counted under `other`.
 */
export class StageLabels {
  private readonly seen = new Set<string>()

  constructor(private readonly limit = 64) {}

  label(stage: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/.test(stage)) return 'other'
    if (this.seen.has(stage)) return stage
    if (this.seen.size >= this.limit) return 'other'
    this.seen.add(stage)
    return stage
  }
}
