import {BaseCommand} from '../../base-command.js'
import {daemonStoreTarget, outputDirFlag} from '../../ctl/daemon-flags.js'
import {JobStore} from '../../daemon/store.js'
import {formatBytes} from '../../render/progress-meter.js'

interface Sizes {
  db: number
  wal: number
  total: number
}

export default class DedupVacuum extends BaseCommand<typeof DedupVacuum> {
  static override description = `Checkpoints the write-ahead log into the job store and truncates it (PRAGMA wal_checkpoint(TRUNCATE)), then rebuilds the database without its free pages (VACUUM): reclaims the space of purged and forgotten records. Safe while the daemon runs: it waits for the daemon's transactions (busy timeout 5 s) and fails with H2K_STORE_FAILED rather than interfere.`
  static override examples = ['<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml', '<%= config.bin %> <%= command.id %> --output-dir /var/lib/hyper2kvm/output --json']
  static override flags = {...outputDirFlag}
  static override summary = 'Compact the daemon job store (jobs.db) and report its size before and after.'

  public async run(): Promise<{path: string; before: Sizes; after: Sizes; reclaimed: number; checkpoint: {busy: number; log: number; checkpointed: number}}> {
    const target = await daemonStoreTarget(this.flags)
    const store = JobStore.openExisting(target)
    try {
      const before = store.diskUsage()
      const {checkpoint} = store.vacuum()
      const after = store.diskUsage()
      const reclaimed = before.total - after.total
      if (!this.jsonEnabled()) {
        this.log(`${store.path}: ${formatBytes(before.total)} (db ${formatBytes(before.db)} + wal ${formatBytes(before.wal)}) → ${formatBytes(after.total)} (db ${formatBytes(after.db)} + wal ${formatBytes(after.wal)})`)
        this.log(reclaimed > 0 ? `reclaimed ${formatBytes(reclaimed)}` : 'nothing to reclaim')
      }
      return {after, before, checkpoint, path: store.path, reclaimed}
    } finally {
      store.close()
    }
  }
}
