import {stat} from 'node:fs/promises'
import {basename, resolve} from 'node:path'

import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {type DaemonConfig, type DedupKey, loadDaemonConfig} from '../../daemon/config.js'
import {daemonStoreTarget, outputDirFlag} from '../../ctl/daemon-flags.js'
import {fileKey} from '../../daemon/file-key.js'
import {JobStore, type ProcessedFileRow} from '../../daemon/store.js'
import {H2KError} from '@hyper2kvm/plugin-api'
import {mapForeignError} from '../../errors/map-foreign-error.js'

interface CheckResult {
  file: string
  filename: string
  size: number
  key: DedupKey
  /** Where the key came from: --hash, the configuration, or the default. */
  key_from: 'flag' | 'config' | 'default'
  hash: string | null
  /** An earlier successful conversion has the same key. */
  duplicate: boolean
  /** enable_deduplication of the configuration; null when no configuration was read. */
  dedup_enabled: boolean | null
  /** A drop of this file would be moved to duplicates/ unconverted. */
  would_skip: boolean
  match: (ProcessedFileRow & {job_status: string | null}) | null
}

export default class DedupCheck extends BaseCommand<typeof DedupCheck> {
  static override args = {file: Args.string({description: 'The file to check (it is read, never moved)', required: true})}
  static override description = `Computes the key the daemon would compare for this file — name and size, or its SHA-256 or MD5 content hash and size (deduplication_hash of --config, or --hash) — and looks it up in processed_files: says whether dropping it would be skipped as a duplicate, and of which job and when. Opens the job store read-only; works while the daemon runs.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> ./web01.vmdk --config /etc/hyper2kvm/daemon.yaml',
    '<%= config.bin %> <%= command.id %> ./web01.vmdk --output-dir /var/lib/hyper2kvm/output --hash sha256 --json',
  ]
  static override flags = {
    ...outputDirFlag,
    hash: Flags.option({description: 'The key to compute (default: the configuration\'s deduplication_hash, else sha256).', options: ['sha256', 'md5', 'name-size'] as const})(),
  }
  static override summary = 'Check whether the daemon would skip a file as already converted.'

  public async run(): Promise<CheckResult> {
    const path = resolve(this.args.file)
    const info = await stat(path).catch((error: unknown) => {
      throw mapForeignError(error, {path})
    })
    if (!info.isFile()) throw new H2KError('H2K_USAGE', `${path} is not a regular file.`, {suggestions: ['Pass the file you would drop into the inbox.']})
    // The configuration gives the output directory, the key and whether dedup is on; without --config, --output-dir is enough.
    const config: DaemonConfig | undefined = this.flags.config !== undefined || this.flags['output-dir'] === undefined ? await loadDaemonConfig({config: this.flags.config}) : undefined
    // The store: the configuration's PostgreSQL store, else jobs.db in its state_dir (output_dir/.daemon unless moved).
    const target = await daemonStoreTarget(this.flags)
    const key: DedupKey = this.flags.hash ?? config?.dedupKey ?? 'sha256'
    const filename = basename(path)
    const hash = await fileKey(path, key, this.abort.signal)
    const store = JobStore.open(target, {readonly: true})
    let match: CheckResult['match'] = null
    try {
      const row = store.findProcessed(filename, info.size, hash)
      if (row) match = {...row, job_status: row.job_id === null ? null : (store.job(row.job_id)?.status ?? null)}
    } finally {
      store.close()
    }
    const dedupEnabled = config === undefined ? null : config.enableDeduplication
    const result: CheckResult = {
      dedup_enabled: dedupEnabled,
      duplicate: match !== null,
      file: path,
      filename,
      hash: hash ?? null,
      key,
      key_from: this.flags.hash === undefined ? (config === undefined ? 'default' : 'config') : 'flag',
      match,
      size: info.size,
      would_skip: match !== null && dedupEnabled !== false,
    }
    if (!this.jsonEnabled()) this.print(result)
    return result
  }

  private print(r: CheckResult): void {
    this.log(`${r.filename}: ${r.size} bytes, key ${r.key}${r.hash ? ` ${r.hash}` : ''} (${r.key_from === 'flag' ? '--hash' : r.key_from === 'config' ? 'from the configuration' : 'default; pass --hash or --config'})`)
    if (r.match === null) {
      this.log('not a duplicate: a drop of this file would be converted')
      return
    }
    const m = r.match
    const of = `${m.job_id === null ? 'a job no longer in the store' : `job ${m.job_id}`} (${m.filename}, processed ${m.processed_at}${m.output_path ? ` → ${m.output_path}` : ''})`
    if (r.dedup_enabled === false) this.log(`matches ${of}, but enable_deduplication is off: it would be converted again`)
    else this.log(`duplicate of ${of}: a drop of this file would be skipped${r.dedup_enabled === null ? ' when enable_deduplication is on' : ''}`)
    this.log(`(\`hyper2kvm dedup forget ${m.filename}\` makes the daemon convert it again)`)
  }
}
