import {BaseCommand} from '../../base-command.js'
import {daemonOutputDir, outputDirFlag} from '../../daemon/ctl-command.js'
import {JobStore, type ProcessedFileRow} from '../../daemon/store.js'

export default class DedupList extends BaseCommand<typeof DedupList> {
  static override description = 'Files the daemon converted successfully (its processed_files table): a file dropped again with the same name and size (or MD5) is skipped when enable_deduplication is on.'
  static override examples = ['<%= config.bin %> <%= command.id %> --output-dir /var/lib/hyper2kvm/output']
  static override flags = {...outputDirFlag}
  static override summary = 'List the files the daemon counts as already processed.'

  public async run(): Promise<{files: ProcessedFileRow[]}> {
    const store = JobStore.open(await daemonOutputDir(this.flags), {readonly: true})
    try {
      const files = store.processedFiles()
      if (!this.jsonEnabled()) {
        for (const f of files) this.log(`${f.processed_at}  ${String(f.file_size).padStart(14)}  ${f.filename}  job=${f.job_id ?? '-'}${f.file_hash ? ` md5=${f.file_hash}` : ''}`)
        this.log(`${files.length} processed file(s)`)
      }
      return {files}
    } finally {
      store.close()
    }
  }
}
