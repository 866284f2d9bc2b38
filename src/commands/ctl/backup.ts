import {resolve} from 'node:path'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {backupDaemonState, type BackupResult} from '../../daemon/backup.js'
import {loadDaemonConfig} from '../../daemon/config.js'
import {controlRequest} from '../../daemon/control-client.js'
import {outputDirFlag} from '../../ctl/daemon-flags.js'
import {stateDir} from '../../daemon/store.js'
import {H2KError} from '@hyper2kvm/plugin-api'
import {escapeControl} from '../../render/escape-control.js'
import {PostgresDb} from '../../store/postgres-db.js'

export default class CtlBackup extends BaseCommand<typeof CtlBackup> {
  static override description =
    "Works whether the daemon runs or not. Writes DIR/hyper2kvm-backup-<YYYYMMDD-HHMMSS>/ (UTC; mode 0700, files 0600: the configuration may hold secrets) with jobs.db — copied through SQLite's online backup API, consistent while the daemon writes (a plain cp of a WAL database can miss committed transactions), then checked with integrity_check — stats.json, the configuration file (--config, else the one the running daemon reports) and backup.json listing every file with its sha256. Refuses a --to that is a symlink or lies inside the drop directory or output_dir/.daemon/. Restore: stop the daemon, copy jobs.db to output_dir/.daemon/jobs.db (remove jobs.db-wal and jobs.db-shm there first)."
  static override examples = ['<%= config.bin %> <%= command.id %> --to /var/backups/hyper2kvm --config /etc/hyper2kvm/daemon.yaml', '<%= config.bin %> <%= command.id %> --to /var/backups/hyper2kvm --output-dir /var/lib/hyper2kvm/output --json']
  static override flags = {
    ...outputDirFlag,
    to: Flags.string({description: 'Directory that receives hyper2kvm-backup-<timestamp>/ (created 0700 if missing; not a symlink).', required: true}),
  }

  static override summary = 'Back up the daemon: its job store (safely, while it runs), stats.json and its configuration.'

  public async run(): Promise<BackupResult> {
    const flags = this.flags
    let outputDir = flags['output-dir'] === undefined ? undefined : resolve(flags['output-dir'])
    let configFile: string | undefined
    let inbox: string | undefined
    let stateDirectory: string | undefined
    // --config, or (without --output-dir) the configuration found where every command looks for one.
    if (flags.config !== undefined || outputDir === undefined) {
      const config = await loadDaemonConfig({config: flags.config})
      if (config.store !== undefined) {
        throw new H2KError('H2K_USAGE', `The job store of this daemon is on PostgreSQL (${PostgresDb.locationOf(config.store)}): ctl backup copies the embedded SQLite store only.`, {
          suggestions: ['Back it up on the server: pg_dump (or your PostgreSQL backups); keep a copy of the configuration file beside it.'],
        })
      }
      if (outputDir === undefined) stateDirectory = config.stateDir
      outputDir ??= config.outputDir
      configFile = config.configFile
      inbox = config.layout.inbox
    }
    if (inbox === undefined && outputDir !== undefined) {
      // Only --output-dir: a running daemon says where its drop directory and configuration are.
      const status = await controlRequest(stateDir(outputDir), 'status', 3000).catch((error: unknown) => {
        if (error instanceof H2KError && (error.code === 'H2K_DAEMON_NOT_RUNNING' || error.code === 'H2K_DAEMON_TIMEOUT')) return undefined
        throw error
      })
      if (typeof status?.inbox === 'string') inbox = status.inbox
      if (typeof status?.config === 'string') configFile = status.config
    }
    if (outputDir === undefined) throw new H2KError('H2K_USAGE', 'Which daemon? Pass --config FILE (its output_dir) or --output-dir DIR.')
    stateDirectory ??= stateDir(outputDir)
    const forbidden = [{dir: stateDirectory, why: "the daemon's own state directory"}]
    if (inbox !== undefined) forbidden.push({dir: inbox, why: 'the drop directory: whoever drops files could read the backup, and the daemon would claim it'})
    const result = await backupDaemonState({configFile, forbidden, outputDir, stateDir: stateDirectory, to: flags.to})
    if (!this.jsonEnabled()) {
      this.log(`Backup: ${escapeControl(result.dir)}`)
      for (const f of result.files) this.log(`  ${f.name.padEnd(14)} ${String(f.bytes).padStart(10)} bytes  sha256 ${f.sha256}`)
      for (const s of result.skipped) this.log(`  ${s.name.padEnd(14)} skipped: ${escapeControl(s.reason)}`)
      this.log(`  ${result.jobs} job(s) in the backed-up store (integrity_check ok)`)
    }
    return result
  }
}
