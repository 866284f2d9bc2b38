/**
 * `hyper2kvm --config FILE [flags]`, with no command: runs `hyper2kvm daemon --config FILE [flags]` when
 * the file says `command: daemon` (or `daemon: true`). Any other file (job file, batch, manifest, plain
 * configuration) is refused with the command that runs it; nothing is guessed. Every other command line
 * (commands, --help, --version) is handed to oclif untouched.
 *
 * Loaded by bin/run.js on every start, so it imports nothing heavy until a command line actually matches.
 */
import type {H2KError} from '@hyper2kvm/plugin-api'

/** The parts of a bare `--config FILE ...` command line. */
export interface ConfigInvocation {
  /** The configuration file as given. */
  file: string
  /** Every other argument, in order (global flags given before --config included). */
  rest: string[]
}

/** What to do with a bare `--config FILE` command line. */
export type ConfigRoute = {kind: 'run'; args: string[]} | {kind: 'refuse'; error: H2KError}

const HELP_FLAGS = new Set(['--help', '-h'])

/**
 * The bare form: no command, the first arguments are global flags (--log-level L, --json) and one of them
 * is `--config FILE` / `--config=FILE`. Anything else (a command first, --help, --version) is not ours.
 */
export function parseConfigInvocation(argv: readonly string[]): ConfigInvocation | undefined {
  const end = argv.indexOf('--')
  if (argv.slice(0, end === -1 ? undefined : end).some((arg) => HELP_FLAGS.has(arg))) return undefined
  const leading: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--config' || arg.startsWith('--config=')) {
      const file = arg === '--config' ? argv[i + 1] : arg.slice('--config='.length)
      if (file === undefined || file === '' || (arg === '--config' && file.startsWith('-'))) return undefined
      return {file, rest: [...leading, ...argv.slice(arg === '--config' ? i + 2 : i + 1)]}
    }
    if (arg === '--json' || arg.startsWith('--log-level=')) {
      leading.push(arg)
    } else if (arg === '--log-level' && argv[i + 1] !== undefined) {
      leading.push(arg, argv[i + 1]!)
      i++
    } else {
      return undefined
    }
  }
  return undefined
}

/** Quote a path for a suggested command line when the shell would split or expand it. */
function shellWord(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", String.raw`'\''`)}'`
}

/**
 * Read the file (the same reader as job files and configs: size cap, file:line:column syntax errors) and
 * decide: the daemon command line, or an error that names the command the file is meant for.
 */
export async function routeConfigInvocation(invocation: ConfigInvocation): Promise<ConfigRoute> {
  const {access} = await import('node:fs/promises')
  const {H2KError} = await import('@hyper2kvm/plugin-api')
  const {file, rest} = invocation
  const exists = await access(file).then(
    () => true,
    () => false,
  )
  if (!exists) {
    // The same code and wording as `hyper2kvm daemon --config FILE` for a missing file.
    return {
      error: new H2KError('H2K_INPUT_NOT_FOUND', `The configuration file ${file} does not exist.`, {
        details: {path: file},
        suggestions: ['Check the path; `hyper2kvm --config FILE` runs the daemon with a configuration that says `command: daemon` (see examples/daemon.yaml).'],
      }),
      kind: 'refuse',
    }
  }
  const [{SourceDocument}, {documentKind}, {mapForeignError}] = await Promise.all([import('./jobs/document.js'), import('./jobs/job-plan.js'), import('./errors/map-foreign-error.js')])
  let value: unknown
  try {
    value = (await SourceDocument.read(file)).value
  } catch (error) {
    return {error: mapForeignError(error, {path: file}), kind: 'refuse'}
  }
  const q = shellWord(file)
  const usage = '`hyper2kvm --config FILE` without a command only runs the daemon, for a file that says `command: daemon`'
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      error: new H2KError('H2K_JOB_INVALID', `${file} is not a mapping of configuration keys, so it is no daemon configuration; ${usage}.`, {
        details: {file},
        suggestions: [`Run \`hyper2kvm validate ${q}\` to see what is wrong with it.`],
      }),
      kind: 'refuse',
    }
  }
  const keys = value as Record<string, unknown>
  if (keys.command === 'daemon' || keys.daemon === true) return {args: ['daemon', '--config', file, ...rest], kind: 'run'}

  const kind = documentKind(value)
  const refuse = (what: string, suggestions: string[]): ConfigRoute => ({
    error: new H2KError('H2K_USAGE', `${file} ${what}; ${usage}.`, {details: {file, kind}, suggestions}),
    kind: 'refuse',
  })
  if (kind === 'manifest') return refuse('is a manifest, not a daemon configuration', [`Run it: hyper2kvm batch ${q}`])
  if (kind === 'daemon') {
    const said = 'command' in keys ? `says \`command: ${JSON.stringify(keys.command)}\`` : 'daemon' in keys ? `says \`daemon: ${JSON.stringify(keys.daemon)}\`` : 'does not say `command: daemon`'
    return refuse(`looks like a daemon configuration but ${said}`, [`Add \`command: daemon\` to ${file}, or run: hyper2kvm daemon --config ${q}`])
  }
  if (Array.isArray(keys.jobs)) return refuse('is a batch job file, not a daemon configuration', [`Run its jobs: hyper2kvm batch ${q}`])
  if ('input' in keys) return refuse('is a job file, not a daemon configuration', [`Run the job: hyper2kvm convert --job ${q}`, `Or as a batch: hyper2kvm batch ${q}`])
  return refuse('holds conversion defaults, not a daemon configuration', [`Use it with a command: hyper2kvm convert DISK --config ${q}`, `For the daemon, add \`command: daemon\` (and watch_dir, output_dir) to ${file}.`])
}

/**
 * The command line to give oclif, or undefined when it was a bare `--config FILE` that had to be refused
 * (the error is then rendered and process.exitCode set).
 */
export async function routeArgv(argv: string[]): Promise<string[] | undefined> {
  const invocation = parseConfigInvocation(argv)
  if (!invocation) return argv
  const route = await routeConfigInvocation(invocation)
  if (route.kind === 'run') return route.args
  const {renderError} = await import('./errors/render-error.js')
  const debug = argv.some((arg, i) => arg === '--log-level=debug' || (arg === '--log-level' && argv[i + 1] === 'debug'))
  renderError(route.error, {debug, json: argv.includes('--json')})
  process.exitCode = route.error.exitCode
  return undefined
}
