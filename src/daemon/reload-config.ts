import {type DaemonConfig, LIVE_KEYS} from './config.js'

export interface ReloadPlan {
  /** The running configuration with the live keys (and conversion defaults) taken from the new one. */
  updated: DaemonConfig
  /** `key: old → new` for every live change. */
  changed: string[]
  /** Keys that differ but only take effect after a restart. */
  needsRestart: string[]
}

/** SIGHUP: which settings of `next` apply at once, and which changed but need a restart. */
export function planReload(current: DaemonConfig, next: DaemonConfig): ReloadPlan {
  const changed: string[] = []
  const updated = {...current}
  for (const key of LIVE_KEYS) {
    if (JSON.stringify(current[key]) !== JSON.stringify(next[key])) {
      changed.push(`${key}: ${JSON.stringify(current[key])} → ${JSON.stringify(next[key])}`)
      ;(updated as Record<string, unknown>)[key] = next[key]
    }
  }
  // Schedules are the file's: the schedule piece syncs them into the store (onReload).
  if (JSON.stringify(current.schedules) !== JSON.stringify(next.schedules)) {
    changed.push('schedules')
    updated.schedules = next.schedules
  }
  if (JSON.stringify(current.jobDefaults) !== JSON.stringify(next.jobDefaults)) {
    changed.push('conversion defaults (for newly claimed files)')
    updated.jobDefaults = next.jobDefaults
  }
  const needsRestart = [
    current.layout.root === next.layout.root && current.layout.kind === next.layout.kind ? undefined : 'layout',
    // sandbox too: turning it off is logged at start, never done silently by a reload.
    // work_dir, umask and the scan interval are applied once, at start: a change is reported, not silently dropped.
    ...(['outputDir', 'workDir', 'logFile', 'logFormat', 'sandbox', 'umask', 'stabilityIntervalMs'] as const).filter((k) => current[k] !== next[k]),
    // Channels and the outbox are built at start: a changed notifications block takes a restart.
    JSON.stringify(current.notifications) === JSON.stringify(next.notifications) ? undefined : 'notifications',
    JSON.stringify(current.metrics) === JSON.stringify(next.metrics) ? undefined : 'metrics',
    JSON.stringify(current.api) === JSON.stringify(next.api) ? undefined : 'api',
    JSON.stringify(current.webhooks) === JSON.stringify(next.webhooks) ? undefined : 'webhooks',
  ].filter((k): k is string => k !== undefined)
  return {changed, needsRestart, updated}
}
