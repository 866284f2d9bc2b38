/**
 * What a notification says, independent of where it goes: built from a daemon event's JobInfo/ErrorInfo
 * only (never from a dropped file's content). Names that came from droppers are escaped and bounded.
 */
import {hostname} from 'node:os'

import type {DaemonEvent, ErrorInfo, JobInfo} from '../daemon/daemon-events.js'
import {escapeControl} from '../render/escape-control.js'
import type {NotificationSettings, NotifyEvent} from './settings.js'

export type NoticeLevel = 'success' | 'error' | 'warning' | 'info'

/** The facts: the seed's generic `details` keys first, ours beside them. */
export interface NoticeDetails {
  filename?: string
  file_size_mb?: number
  error?: string
  retry_count?: number
  max_retries?: number
  next_retry_minutes?: number
  job_id?: string
  error_code?: string
  phase?: string
  suggestion?: string
  permanent?: boolean
  next_retry_at?: string
  attempt?: number
  previous_error?: string
  previous_error_code?: string
  duration_seconds?: number
  output_path?: string
  output_size_mb?: number
  queue_depth?: number
  currently_processing?: number
  idle_minutes?: number
  host?: string
}

export interface Notice {
  event: NotifyEvent
  /** ISO 8601, UTC. */
  timestamp: string
  level: NoticeLevel
  /** `❌ Conversion Failed` … */
  title: string
  /** One sentence: `Failed to convert vm-123.vmdk`. */
  text: string
  /** Human lines (`Error: …`, `Retry: 1/3 (next retry in 5.0 minutes)`), for chat fields and the mail body. */
  lines: Array<{label: string; value: string; short: boolean}>
  details: NoticeDetails
}

/** A dropped name as a notification may show it: one line, bounded. */
export function safeName(text: string, max = 200): string {
  const one = escapeControl(text)
  return one.length > max ? `${one.slice(0, max - 1)}…` : one
}

const mb = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10

export function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)}GB`
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)}MB`
  return `${bytes}B`
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s}s`
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  return h > 0 ? `${h}h ${m}m ${s % 60}s` : `${m}m ${s % 60}s`
}

const jobFacts = (job: JobInfo): NoticeDetails => ({file_size_mb: mb(job.sizeBytes), filename: safeName(job.filename), job_id: job.id})

const errorFacts = (error: ErrorInfo): NoticeDetails => ({
  error: safeName(error.message, 1000),
  error_code: error.code,
  permanent: error.permanent,
  ...(error.phase ? {phase: error.phase} : {}),
  ...(error.suggestion ? {suggestion: safeName(error.suggestion, 1000)} : {}),
})

const line = (label: string, value: string, short = true) => ({label, short, value})

function errorLines(d: NoticeDetails): Notice['lines'] {
  return [
    line('Error', `${d.error} (${d.error_code})`, false),
    ...(d.phase ? [line('Phase', d.phase)] : []),
    ...(d.suggestion ? [line('Suggestion', d.suggestion, false)] : []),
  ]
}

function base(event: NotifyEvent, at: Date, level: NoticeLevel, title: string, text: string, details: NoticeDetails, lines: Notice['lines']): Notice {
  return {details: {...details, host: hostname()}, event, level, lines, text, timestamp: at.toISOString(), title}
}

/** The notification an event calls for under these settings, or undefined (not one we send, or switched off). */
export function noticeFor(event: DaemonEvent, settings: NotificationSettings): Notice | undefined {
  switch (event.type) {
    case 'job:succeeded': {
      const d: NoticeDetails = {...jobFacts(event.job), attempt: event.attempt, duration_seconds: Math.round(event.durationMs / 100) / 10, max_retries: event.maxRetries, output_path: safeName(event.outputPath, 500), output_size_mb: mb(event.outputBytes)}
      if (event.previousError) {
        // The failure was reported: so is its recovery.
        if (!settings.notifyOnFailure && !settings.notifyOnSuccess) return undefined
        const previous = {previous_error: safeName(event.previousError.message, 1000), previous_error_code: event.previousError.code}
        return base('retry_success', event.at, 'success', '✅ Retry Successful', `${d.filename} succeeded on attempt ${event.attempt}/${event.maxRetries + 1}`, {...d, ...previous, retry_count: event.attempt - 1}, [
          line('Filename', d.filename!),
          line('Attempt', `${event.attempt}/${event.maxRetries + 1}`),
          line('Previous error', `${previous.previous_error} (${previous.previous_error_code})`, false),
          line('Duration', formatDuration(event.durationMs)),
        ])
      }
      if (!settings.notifyOnSuccess) return undefined
      return base('conversion_success', event.at, 'success', '✅ Conversion Successful', `${d.filename} → ${d.output_path}`, d, [
        line('Filename', d.filename!),
        line('Size', formatSize(event.job.sizeBytes)),
        line('Duration', formatDuration(event.durationMs)),
        line('Output', d.output_path!, false),
      ])
    }
    case 'job:retry': {
      if (!settings.notifyOnFailure) return undefined
      const minutes = Math.round(event.delayMs / 6000) / 10
      const d: NoticeDetails = {...jobFacts(event.job), ...errorFacts(event.error), attempt: event.attempt, max_retries: event.maxRetries, next_retry_at: event.nextRetryAt.toISOString(), next_retry_minutes: minutes, retry_count: event.attempt}
      return base('conversion_failure', event.at, 'error', '❌ Conversion Failed', `Failed to convert ${d.filename}`, d, [
        line('Filename', d.filename!),
        line('Size', formatSize(event.job.sizeBytes)),
        ...errorLines(d),
        line('Retry', `${event.attempt}/${event.maxRetries} (next retry in ${minutes.toFixed(1)} minutes)`),
      ])
    }
    case 'job:failed': {
      if (!settings.notifyOnFailure) return undefined
      const d: NoticeDetails = {...jobFacts(event.job), ...errorFacts(event.error), attempt: event.attempt, max_retries: event.maxRetries, retry_count: event.attempt - 1}
      const retry = event.error.permanent ? 'none (permanent error)' : `${event.attempt - 1}/${event.maxRetries} (no retry left)`
      return base('conversion_failure', event.at, 'error', '❌ Conversion Failed', `Failed to convert ${d.filename}`, d, [
        line('Filename', d.filename!),
        line('Size', formatSize(event.job.sizeBytes)),
        ...errorLines(d),
        line('Retry', retry),
      ])
    }
    case 'daemon:stalled': {
      if (!settings.notifyOnStall) return undefined
      const minutes = Math.round(event.idleSeconds / 6) / 10
      const d: NoticeDetails = {currently_processing: event.running, idle_minutes: minutes, queue_depth: event.queued}
      return base('daemon_stall', event.at, 'warning', '⚠️ Daemon Stalled', `No files processed in ${minutes} minutes`, d, [
        line('Queue depth', String(event.queued)),
        line('Currently processing', String(event.running)),
        line('Action', 'Check daemon health (hyper2kvm ctl status, ctl jobs)', false),
      ])
    }
    default:
      return undefined
  }
}

/** The message `hyper2kvm notify test` sends. */
export function testNotice(at = new Date()): Notice {
  return base('test', at, 'info', 'ℹ️ Test Notification', 'Test from hyper2kvm: this channel is configured correctly', {}, [line('Sent by', 'hyper2kvm notify test')])
}
