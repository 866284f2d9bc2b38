import {lstat, rm} from 'node:fs/promises'
import {join} from 'node:path'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {cutoffBefore, parseDuration} from '../../daemon/duration.js'
import {errorsLayout, watchDirFlag} from '../../ctl/daemon-flags.js'
import {readErrorFiles, removeEmptyDirs} from '../../daemon/error-files.js'
import {formatBytes} from '../../render/progress-meter.js'

interface Purged {
  filename: string
  error_file: string
  failed_at: string
  /** The failed files removed with it (those still present). */
  files: string[]
  bytes: number
}

export default class ErrorsPurge extends BaseCommand<typeof ErrorsPurge> {
  static override description = `Removes the error files that failed longer ago than --older-than (by their timestamp; the file's mtime when it cannot be read) together with the failed files kept beside them, and the dated failed/<date>/ directories left empty. --dry-run lists what would go without removing anything.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --older-than 30d --dry-run --config /etc/hyper2kvm/daemon.yaml',
    '<%= config.bin %> <%= command.id %> --older-than 2w --watch-dir /srv/queue --json',
  ]
  static override flags = {
    ...watchDirFlag,
    'dry-run': Flags.boolean({description: 'Only list what would be removed.'}),
    'older-than': Flags.string({description: 'Age of the failures to remove: a number and a unit, s, m, h, d or w (30d, 12h, 2w).', required: true}),
  }
  static override summary = 'Remove old error files and their failed files.'

  public async run(): Promise<{dry_run: boolean; older_than: string; cutoff: string; removed: Purged[]; removed_dirs: string[]; bytes: number; kept: number}> {
    const cutoff = cutoffBefore(parseDuration(this.flags['older-than'], '--older-than'))
    const layout = await errorsLayout(this.flags)
    const entries = await readErrorFiles(layout)
    const old = entries.filter((e) => e.failedAt < cutoff)
    const dryRun = this.flags['dry-run']
    const removed: Purged[] = []
    const removedDirs: string[] = []
    for (const entry of old) {
      const present: Array<{path: string; size: number}> = []
      for (const path of [...entry.files.map((f) => join(entry.dir, f)), entry.path]) {
        const info = await lstat(path).catch(() => undefined)
        // Files and links only: a directory is never something the daemon put there for one item.
        if (info && !info.isDirectory()) present.push({path, size: info.isFile() ? info.size : 0})
      }
      if (!dryRun) {
        for (const p of present) await rm(p.path, {force: true})
        removedDirs.push(...(await removeEmptyDirs(layout, entry)))
      }
      removed.push({
        bytes: present.reduce((sum, p) => sum + p.size, 0),
        error_file: entry.path,
        failed_at: entry.failedAt.toISOString(),
        filename: entry.filename,
        files: present.map((p) => p.path).filter((p) => p !== entry.path),
      })
    }
    const bytes = removed.reduce((sum, r) => sum + r.bytes, 0)
    if (!this.jsonEnabled()) {
      const verb = dryRun ? 'would remove' : 'removed'
      for (const r of removed) {
        this.log(`${verb} ${r.error_file} (failed ${r.failed_at})`)
        for (const f of r.files) this.log(`  and ${f}`)
      }
      for (const d of removedDirs) this.log(`removed empty ${d}`)
      this.log(`${dryRun ? 'Would remove' : 'Removed'} ${removed.length} error file(s) older than ${this.flags['older-than']} (before ${cutoff.toISOString()}), ${formatBytes(bytes)}; ${entries.length - old.length} kept.`)
    }
    return {bytes, cutoff: cutoff.toISOString(), dry_run: dryRun, kept: entries.length - old.length, older_than: this.flags['older-than'], removed, removed_dirs: removedDirs}
  }
}

