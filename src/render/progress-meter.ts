import type {ProgressUpdate} from '@hyper2kvm/plugin-api'

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

export function formatBytes(bytes: number): string {
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${UNITS[unit]}`
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?'
  if (seconds < 60) return `${Math.round(seconds)}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`
}

/** Turns a stream of progress updates into "45% 1.2 GiB/2.0 GiB 150 MiB/s ETA 5s". */
export class ProgressMeter {
  private startBytes: number | undefined
  private startTime = 0
  private rate = 0

  update(progress: ProgressUpdate, now = performance.now()): string {
    const parts: string[] = []
    if (progress.message) parts.push(progress.message)
    if (progress.percent !== undefined) parts.push(`${progress.percent.toFixed(progress.percent < 10 ? 1 : 0)}%`)
    if (progress.bytesDone !== undefined && progress.bytesTotal) {
      parts.push(`${formatBytes(progress.bytesDone)}/${formatBytes(progress.bytesTotal)}`)
      if (this.startBytes === undefined) {
        this.startBytes = progress.bytesDone
        this.startTime = now
      } else if (now - this.startTime > 500) {
        this.rate = ((progress.bytesDone - this.startBytes) / (now - this.startTime)) * 1000
      }
      if (this.rate > 0) {
        parts.push(`${formatBytes(this.rate)}/s`, `ETA ${formatDuration((progress.bytesTotal - progress.bytesDone) / this.rate)}`)
      }
    }
    return parts.join(' ')
  }
}
