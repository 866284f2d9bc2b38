import {spawnSync} from 'node:child_process'
import {mkdirSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

/** The checkout: what `npm pack` packs. */
export const REPO = fileURLToPath(new URL('../..', import.meta.url))

/** The README's install line: only the two native modules hyper2kvm needs may run install scripts. */
export const ALLOW_SCRIPTS = 'better-sqlite3,unix-dgram'

/** One file of `npm pack --json`. */
export interface PackedFile {
  path: string
  size: number
}

/** What `npm pack --json` reports about the tarball it wrote. */
export interface PackReport {
  filename: string
  entryCount: number
  size: number
  unpackedSize: number
  bundled: string[]
  files: PackedFile[]
}

export interface Installed {
  /** The tarball `npm pack` wrote. */
  tarball: string
  pack: PackReport
  /** `<prefix>/bin/hyper2kvm`, the link `npm install -g` made. */
  bin: string
  /** `<prefix>/lib/node_modules/hyper2kvm`. */
  packageDir: string
  prefix: string
  installSeconds: number
}

export interface RunResult {
  status: number | null
  stdout: string
  stderr: string
}

/**
 * The environment of the process that runs this test, without npm's `npm_*` variables: under `npm test` or
 * `npx` they would point the nested npm at the parent's prefix and configuration.
 */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)))
  return {...env, NO_COLOR: '1', ...extra}
}

function run(command: string, args: string[], options: {cwd: string; env?: NodeJS.ProcessEnv}): RunResult {
  const result = spawnSync(command, args, {cwd: options.cwd, encoding: 'utf8', env: options.env ?? cleanEnv(), maxBuffer: 64 * 1024 * 1024})
  if (result.error) throw result.error
  return {status: result.status, stderr: result.stderr, stdout: result.stdout}
}

function mustRun(command: string, args: string[], options: {cwd: string; env?: NodeJS.ProcessEnv}): RunResult {
  const result = run(command, args, options)
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} → exit ${result.status}\n${result.stdout}\n${result.stderr}`)
  return result
}

/**
 * `npm pack` the checkout as it is built (`--ignore-scripts`: prepack would build again) into `dir`, then
 * `npm install -g` that tarball into the empty prefix `<dir>/prefix` the way the README says. The npm cache of
 * the machine is used (CI's is warm from `npm ci`); better-sqlite3 and unix-dgram compile here (~60 s).
 */
export function packAndInstall(dir: string): Installed {
  const packed = mustRun('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {cwd: REPO})
  const [pack] = JSON.parse(packed.stdout) as PackReport[]
  if (!pack) throw new Error(`npm pack --json printed no report: ${packed.stdout}`)
  const tarball = join(dir, pack.filename)
  const prefix = join(dir, 'prefix')
  mkdirSync(prefix)
  const started = process.hrtime.bigint()
  mustRun('npm', ['install', '-g', '--prefix', prefix, `--allow-scripts=${ALLOW_SCRIPTS}`, '--prefer-offline', '--no-fund', '--no-audit', tarball], {cwd: dir})
  const installSeconds = Number(process.hrtime.bigint() - started) / 1e9
  return {bin: join(prefix, 'bin', 'hyper2kvm'), installSeconds, pack, packageDir: join(prefix, 'lib', 'node_modules', 'hyper2kvm'), prefix, tarball}
}

/** A fresh HOME and XDG base directories under `dir`: nothing of this machine's user leaks into the run. */
export function freshHome(dir: string): NodeJS.ProcessEnv {
  const home = join(dir, 'home')
  const env = {
    HOME: home,
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_CONFIG_DIRS: join(dir, 'xdg-config-dirs'),
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_STATE_HOME: join(home, '.local', 'state'),
  }
  for (const path of Object.values(env)) mkdirSync(path, {recursive: true})
  return env
}

/** Run the installed `hyper2kvm` as a user would (by its bin link), from `cwd`, with `env` added. */
export function runInstalled(installed: Installed, args: string[], options: {cwd: string; env: NodeJS.ProcessEnv}): RunResult {
  return run(installed.bin, args, {cwd: options.cwd, env: cleanEnv(options.env)})
}

/** `npm ls -g --all` of the prefix: exit 0 only when nothing is missing, invalid or extraneous. */
export function npmLsInstalled(installed: Installed): RunResult {
  return run('npm', ['ls', '-g', '--all', '--prefix', installed.prefix], {cwd: installed.prefix})
}
