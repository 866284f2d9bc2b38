import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {chmod, lstat, mkdir, open, readFile, realpath, writeFile} from 'node:fs/promises'
import {basename, dirname, join, resolve} from 'node:path'

import Database from 'better-sqlite3'

import {H2KError} from '@hyper2kvm/plugin-api'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {relativeInside} from '@hyper2kvm/plugin-api/host'
import {ownedByUsOrRoot} from '../fs/trusted-owner.js'
import {JobStore, stateDir} from './store.js'

export interface BackupRequest {
  outputDir: string
  /** The daemon's state_dir (its jobs.db and stats.json); default output_dir/.daemon. */
  stateDir?: string
  /** The directory that receives `hyper2kvm-backup-<timestamp>/` (created 0700 when missing). */
  to: string
  /** The daemon configuration file, copied as it is (it may hold secrets: the backup is 0700/0600). */
  configFile?: string
  /** Directories a backup must not go into: the drop directory (whoever drops files could read it) … */
  forbidden: Array<{dir: string; why: string}>
}

export interface BackupFile {
  name: string
  source: string
  bytes: number
  sha256: string
}

export interface BackupResult {
  dir: string
  created_at: string
  output_dir: string
  jobs: number
  files: BackupFile[]
  skipped: Array<{name: string; reason: string}>
}

/** `hyper2kvm-backup-YYYYMMDD-HHMMSS` (UTC), the seed's date format. */
const stamp = (at: Date): string => at.toISOString().replace(/\.\d+Z$/, '').replace(/[-:]/g, '').replace('T', '-')

async function sha256(path: string): Promise<{bytes: number; sha256: string}> {
  const content = await readFile(path)
  return {bytes: content.length, sha256: createHash('sha256').update(content).digest('hex')}
}

/** The destination root: not a symlink, created 0700 when missing, not inside a forbidden directory (by real path). */
async function destinationRoot(request: BackupRequest): Promise<string> {
  const root = resolve(request.to)
  const info = await lstat(root).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw mapForeignError(error, {operation: 'Cannot use the backup directory', path: root})
  })
  if (info?.isSymbolicLink()) {
    throw new H2KError('H2K_UNSAFE_PATH', `${root} is a symbolic link; the backup is not written through one (it holds the configuration and the job store).`, {
      details: {dir: root},
      suggestions: ['Pass the real directory as --to.'],
    })
  }
  if (info && !info.isDirectory()) throw new H2KError('H2K_USAGE', `${root} exists and is not a directory.`, {details: {dir: root}})
  // Others who may rename entries in it (writable without the sticky bit, or their own directory) could move
  // the new backup directory away and put a link to theirs in its place while the files are written.
  const othersWrite = info !== undefined && (info.mode & 0o022) !== 0 && (info.mode & 0o1000) === 0
  if (info && (othersWrite || !ownedByUsOrRoot(info))) {
    throw new H2KError('H2K_UNSAFE_PATH', `${root} ${othersWrite ? 'is writable by other users (without the sticky bit)' : 'belongs to another user'}; the backup (configuration and job store) is not written there.`, {
      details: {dir: root},
      suggestions: ['Back up into a directory only this user (or root) can write, e.g. /var/backups/hyper2kvm (created 0700 when missing).'],
    })
  }
  // Checked before anything is created: a refused --to leaves nothing behind in the drop directory.
  const real = await realPathOf(root)
  for (const {dir, why} of request.forbidden) {
    const forbidden = existsSync(dir) ? await realpath(dir) : resolve(dir)
    if (relativeInside(forbidden, real) !== undefined) {
      throw new H2KError('H2K_UNSAFE_PATH', `${root} is inside ${dir} (${why}); refusing to write a backup there.`, {
        details: {dir: root, inside: dir},
        suggestions: ['Back up to a directory outside the daemon\'s layout, e.g. /var/backups/hyper2kvm.'],
      })
    }
  }
  if (!info) await mkdir(root, {mode: 0o700, recursive: true})
  return realpath(root)
}

/** The real path of `path`, which need not exist yet: its nearest existing ancestor resolved, the rest appended. */
async function realPathOf(path: string): Promise<string> {
  const rest: string[] = []
  for (let dir = path; ; dir = dirname(dir)) {
    try {
      return join(await realpath(dir), ...rest.reverse())
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(dir) === dir) throw mapForeignError(error, {operation: 'Cannot use the backup directory', path})
      rest.push(basename(dir))
    }
  }
}

/** A new directory of its own, 0700 whatever the umask; `-2`, `-3` … when two backups start in the same second. */
async function newBackupDir(root: string, at: Date): Promise<string> {
  for (let n = 1; ; n++) {
    const dir = join(root, `hyper2kvm-backup-${stamp(at)}${n === 1 ? '' : `-${n}`}`)
    try {
      await mkdir(dir, {mode: 0o700})
      await chmod(dir, 0o700)
      return dir
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || n >= 100) throw mapForeignError(error, {operation: 'Cannot create the backup directory', path: dir})
    }
  }
}

/** Copy a small file into the backup, 0600, refusing to replace anything. */
async function copySmall(source: string, dest: string): Promise<void> {
  await writeFile(dest, await readFile(source), {flag: 'wx', mode: 0o600})
}

/**
 * Back up what a daemon needs to be restored: the job store through SQLite's online backup API (consistent
 * while a daemon writes; then switched to a self-contained rollback journal and checked), stats.json and the
 * configuration file, into a new 0700 directory with `backup.json` listing every file and its sha256.
 */
export async function backupDaemonState(request: BackupRequest): Promise<BackupResult> {
  const at = new Date()
  const root = await destinationRoot(request)
  const dir = await newBackupDir(root, at)
  const files: BackupFile[] = []
  const skipped: BackupResult['skipped'] = []

  const state = request.stateDir ?? stateDir(request.outputDir)
  const store = JobStore.open({sqlitePath: join(state, 'jobs.db')}, {readonly: true})
  const dbCopy = join(dir, 'jobs.db')
  try {
    // Created 0600 first: SQLite would create it with the process umask.
    await (await open(dbCopy, 'wx', 0o600)).close()
    await store.backup(dbCopy)
  } finally {
    store.close()
  }
  let jobs: number
  const copy = new Database(dbCopy)
  try {
    // One file, no -wal/-shm beside it: a restore is a copy of this file.
    copy.pragma('journal_mode = DELETE')
    const check = String(copy.pragma('integrity_check', {simple: true}))
    if (check !== 'ok') throw new H2KError('H2K_OUTPUT_FAILED', `The backed-up job store fails SQLite's integrity check: ${check}`, {details: {path: dbCopy}})
    jobs = (copy.prepare('SELECT COUNT(*) AS n FROM jobs').get() as {n: number}).n
  } finally {
    copy.close()
  }
  files.push({name: 'jobs.db', source: store.path, ...(await sha256(dbCopy))})

  const stats = join(state, 'stats.json')
  if (existsSync(stats)) {
    await copySmall(stats, join(dir, 'stats.json'))
    files.push({name: 'stats.json', source: stats, ...(await sha256(join(dir, 'stats.json')))})
  } else skipped.push({name: 'stats.json', reason: `not found at ${stats} (written by a running daemon every 5 s)`})

  if (request.configFile) {
    const name = basename(request.configFile) === 'backup.json' ? 'config-backup.json' : basename(request.configFile)
    await copySmall(request.configFile, join(dir, name))
    files.push({name, source: resolve(request.configFile), ...(await sha256(join(dir, name)))})
  } else skipped.push({name: 'config', reason: 'no --config given (secrets in *_file files or the keychain are never copied)'})

  const result: BackupResult = {created_at: at.toISOString(), dir, files, jobs, output_dir: resolve(request.outputDir), skipped}
  const {dir: _dir, ...manifest} = result
  await writeFile(join(dir, 'backup.json'), `${JSON.stringify({format: 'hyper2kvm-backup/1', ...manifest}, null, 2)}\n`, {flag: 'wx', mode: 0o600})
  return result
}
