import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {daemonStoreTarget, outputDirFlag} from '../../ctl/daemon-flags.js'
import {cutoffBefore, parseDuration} from '../../daemon/duration.js'
import {JobStore, type ProcessedFileRow} from '../../daemon/store.js'

export default class DedupPurge extends BaseCommand<typeof DedupPurge> {
  static override description = 'Deletes the processed_files records older than --older-than (by processed_at): those files are converted again when dropped. The jobs and their history stay. --dry-run lists the records without deleting them. Works while the daemon runs.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> --older-than 90d --dry-run --config /etc/hyper2kvm/daemon.yaml',
    '<%= config.bin %> <%= command.id %> --older-than 12w --output-dir /var/lib/hyper2kvm/output --json',
  ]
  static override flags = {
    ...outputDirFlag,
    'dry-run': Flags.boolean({description: 'Only list the records that would be deleted.'}),
    'older-than': Flags.string({description: 'Age of the records to delete: a number and a unit, s, m, h, d or w (90d, 12w).', required: true}),
  }
  static override summary = 'Forget processed files older than a duration.'

  public async run(): Promise<{dry_run: boolean; older_than: string; cutoff: string; purged: number; files: ProcessedFileRow[]}> {
    const cutoff = cutoffBefore(parseDuration(this.flags['older-than'], '--older-than')).toISOString()
    const dryRun = this.flags['dry-run']
    const target = await daemonStoreTarget(this.flags)
    const store = dryRun ? JobStore.open(target, {readonly: true}) : JobStore.openExisting(target)
    try {
      const files = store.processedBefore(cutoff)
      const purged = dryRun ? 0 : store.purgeProcessed(cutoff)
      if (!this.jsonEnabled()) {
        for (const f of files) this.log(`${dryRun ? 'would forget' : 'forgot'} ${f.filename} (${f.file_size} bytes, processed ${f.processed_at}, job ${f.job_id ?? '-'})`)
        this.log(`${dryRun ? `Would delete ${files.length}` : `Deleted ${purged}`} processed-file record(s) older than ${this.flags['older-than']} (before ${cutoff}).`)
      }
      return {cutoff, dry_run: dryRun, files, older_than: this.flags['older-than'], purged}
    } finally {
      store.close()
    }
  }
}
