import {BaseCommand} from '../../base-command.js'
import {daemonStoreTarget, outputDirFlag} from '../../ctl/daemon-flags.js'
import {JobStore} from '../../daemon/store.js'
import {formatBytes} from '../../render/progress-meter.js'

interface StatsResult {
  path: string
  rows: number
  distinct_files: number
  total_bytes: number
  /** Records per key type: sha256 and md5 (content hash), name-size (no hash). */
  by_key: Record<string, number>
  oldest: string | null
  newest: string | null
  db_size: {db: number; wal: number; total: number}
}

export default class DedupStats extends BaseCommand<typeof DedupStats> {
  static override description = 'Counts the processed_files records of the job store: records, distinct file names, the bytes they stand for, records per key type (sha256, md5 or name-size: only records of the configured key match new drops), the oldest and newest, and the size of jobs.db. Opens the store read-only; works while the daemon runs.'
  static override examples = ['<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml', '<%= config.bin %> <%= command.id %> --output-dir /var/lib/hyper2kvm/output --json']
  static override flags = {...outputDirFlag}
  static override summary = 'Show how many files the daemon remembers as converted, and the job store size.'

  public async run(): Promise<StatsResult> {
    const store = JobStore.open(await daemonStoreTarget(this.flags), {readonly: true})
    try {
      const s = store.processedStats()
      const result: StatsResult = {
        by_key: s.byKey,
        db_size: store.diskUsage(),
        distinct_files: s.files,
        newest: s.newest,
        oldest: s.oldest,
        path: store.path,
        rows: s.rows,
        total_bytes: s.bytes,
      }
      if (!this.jsonEnabled()) {
        this.log(`${result.rows} record(s) of ${result.distinct_files} distinct file(s), ${formatBytes(result.total_bytes)} converted`)
        const keys = Object.entries(result.by_key)
        if (keys.length > 0) this.log(`by key: ${keys.map(([k, n]) => `${k} ${n}`).join(', ')}`)
        if (result.oldest) this.log(`oldest ${result.oldest}, newest ${result.newest}`)
        this.log(`${result.path}: ${formatBytes(result.db_size.total)} (db ${formatBytes(result.db_size.db)} + wal ${formatBytes(result.db_size.wal)})`)
      }
      return result
    } finally {
      store.close()
    }
  }
}
