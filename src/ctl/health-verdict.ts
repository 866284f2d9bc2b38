/** Nagios/Icinga plugin states and their exit codes. */
export const HEALTH_EXIT = {CRITICAL: 2, OK: 0, UNKNOWN: 3, WARNING: 1} as const
export type HealthStatus = keyof typeof HEALTH_EXIT

export interface HealthThresholds {
  /** CRITICAL when the success rate is below this (percent; the seed's 50). */
  criticalBelow: number
  /** WARNING when the success rate is below this (percent; the seed's 80). */
  warningBelow: number
}

export interface HealthVerdict {
  status: HealthStatus
  exit_code: number
  /** The one line a monitoring system shows: `OK: …`, `WARNING: …`, `CRITICAL: …`, with perfdata after `|`. */
  message: string
  reasons: string[]
  state: string | null
  success_rate: number | null
}

/** Severity order for combining findings (UNKNOWN outranks WARNING, CRITICAL outranks all). */
const SEVERITY: Record<HealthStatus, number> = {CRITICAL: 3, OK: 0, UNKNOWN: 2, WARNING: 1}
const worst = (a: HealthStatus, b: HealthStatus): HealthStatus => (SEVERITY[b] > SEVERITY[a] ? b : a)

function verdict(status: HealthStatus, reasons: string[], summary: string, extra: {state: string | null; success_rate: number | null; perfdata?: string}): HealthVerdict {
  const text = reasons.length > 0 ? reasons.join('; ') : summary
  return {exit_code: HEALTH_EXIT[status], message: `${status}: ${text}${extra.perfdata ? ` | ${extra.perfdata}` : ''}`, reasons, state: extra.state, status, success_rate: extra.success_rate}
}

/** No answer from the daemon: CRITICAL when none runs, WARNING when its socket is there but does not answer in time (the seed's script). */
export function unreachableVerdict(kind: 'not-running' | 'timeout' | 'other', detail: string): HealthVerdict {
  const status: HealthStatus = kind === 'not-running' ? 'CRITICAL' : kind === 'timeout' ? 'WARNING' : 'UNKNOWN'
  const why = kind === 'not-running' ? `daemon not running (${detail})` : kind === 'timeout' ? `control socket not responding (${detail})` : detail
  return verdict(status, [why], why, {state: kind === 'not-running' ? 'STOPPED' : null, success_rate: null})
}

/**
 * The daemon's health from its live status and stats: the success rate against the thresholds (none yet —
 * nothing finished — is healthy, as the seed's `// 100`), WARNING while it is paused, draining or stopping
 * (no new conversion starts) and while it reports a warning (a refused bookkeeping directory …).
 */
export function healthVerdict(status: Record<string, unknown>, stats: Record<string, unknown>, thresholds: HealthThresholds): HealthVerdict {
  const state = typeof stats.state === 'string' ? stats.state : typeof status.state === 'string' ? status.state : 'UNKNOWN'
  const rate = typeof stats.success_rate === 'number' ? stats.success_rate : null
  const processed = Number(stats.total_processed ?? 0)
  const failed = Number(stats.total_failed ?? 0)
  const queued = Number(stats.current_queue_depth ?? 0)
  const running = Number(stats.running_jobs ?? status.running ?? 0)
  let level: HealthStatus = 'OK'
  const reasons: string[] = []
  if (rate !== null && rate < thresholds.criticalBelow) {
    level = worst(level, 'CRITICAL')
    reasons.push(`success rate below ${thresholds.criticalBelow}%: ${rate}% (${processed} processed, ${failed} failed)`)
  } else if (rate !== null && rate < thresholds.warningBelow) {
    level = worst(level, 'WARNING')
    reasons.push(`success rate below ${thresholds.warningBelow}%: ${rate}% (${processed} processed, ${failed} failed)`)
  }
  if (state !== 'RUNNING') {
    level = worst(level, 'WARNING')
    reasons.push(`daemon ${state}: no new conversion starts`)
  }
  const warnings = Array.isArray(status.warnings) ? status.warnings.map(String) : []
  if (warnings.length > 0) {
    level = worst(level, 'WARNING')
    reasons.push(`${warnings.length} warning(s): ${warnings.join('; ')}`)
  }
  const rateText = rate === null ? 'no job finished yet' : `success rate ${rate}%`
  const summary = `daemon ${state}, ${rateText} (${processed} processed, ${failed} failed), ${queued} queued, ${running} running`
  // Nagios perfdata; `80:` means "alert below 80".
  const perfdata = [
    ...(rate === null ? [] : [`success_rate=${rate}%;${thresholds.warningBelow}:;${thresholds.criticalBelow}:;0;100`]),
    `processed=${processed}c`,
    `failed=${failed}c`,
    `queue=${queued}`,
    `running=${running}`,
  ].join(' ')
  return verdict(level, reasons, summary, {perfdata, state, success_rate: rate})
}
