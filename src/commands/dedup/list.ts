import {BaseCommand} from '../../base-command.js'
import {daemonStoreTarget, outputDirFlag} from '../../ctl/daemon-flags.js'
import {JobStore, type ProcessedFileRow} from '../../daemon/store.js'

/** The key a record was stored with: its hash length tells MD5 (32 hex digits) from SHA-256 (64). */
const keyLabel = (hash: string | null): string => (hash === null ? 'name-size' : hash.length === 64 ? `sha256=${hash}` : hash.length === 32 ? `md5=${hash}` : `hash=${hash}`)

export default class DedupList extends BaseCommand<typeof DedupList> {
  static override description = 'Files the daemon converted successfully (its processed_files table), newest first: with enable_deduplication on, a file dropped again with the same name and size (or the same SHA-256/MD5 content hash and size, per deduplication_hash) is skipped. Opens the store read-only; works while the daemon runs.'
  static override examples = ['<%= config.bin %> <%= command.id %> --output-dir /var/lib/hyper2kvm/output', '<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml --json']
  static override flags = {...outputDirFlag}
  static override summary = 'List the files the daemon counts as already processed.'

  public async run(): Promise<{files: ProcessedFileRow[]}> {
    const store = JobStore.open(await daemonStoreTarget(this.flags), {readonly: true})
    try {
      const files = store.processedFiles()
      if (!this.jsonEnabled()) {
        for (const f of files) this.log(`${f.processed_at}  ${String(f.file_size).padStart(14)}  ${f.filename}  job=${f.job_id ?? '-'}  ${keyLabel(f.file_hash)}`)
        this.log(`${files.length} processed file(s)`)
      }
      return {files}
    } finally {
      store.close()
    }
  }
}
