import {type ChildProcess, spawn} from 'node:child_process'
import {closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {logLines} from './cluster-checks.js'
import {CLI} from './run-cli.js'
import type {TcpProxy} from './tcp-proxy.js'

/** The settings every node of a test cluster shares (seconds, as in the daemon configuration). */
export interface NodeSettings {
  heartbeatInterval: number
  leaseTtl: number
  statementTimeout: number
  connectTimeout: number
  maxConcurrentJobs: number
  /** More YAML lines for every node's configuration (top-level keys). */
  extra?: readonly string[]
}

/** Where one node lives and how it reaches the store. */
export interface NodePlace {
  id: string
  /** This node's own directory: config, state_dir, work dir, log. */
  dir: string
  dropDir: string
  outputDir: string
  /** The store URL without password (through this node's proxy when it has one). */
  storeUrl: string
  passwordFile: string
  proxy?: TcpProxy
}

/**
 * One daemon of a test cluster: a real `hyper2kvm daemon` process of the built CLI with its own state_dir,
 * work dir and log file, sharing the drop directory, output_dir and PostgreSQL store with the other nodes.
 * Its log (stdout and stderr) is appended to `logPath` across restarts, so a test can read what every run
 * of the node said.
 */
export class ClusterNode {
  readonly configPath: string
  readonly logPath: string
  readonly stateDir: string
  readonly workDir: string
  private child: ChildProcess | undefined
  private exit: Promise<number | null> | undefined
  /** How many times this node was started (a restart is a new process with the same node_id and state_dir). */
  starts = 0

  constructor(
    readonly place: NodePlace,
    settings: NodeSettings,
  ) {
    this.stateDir = join(place.dir, 'state')
    this.workDir = join(place.dir, 'work')
    this.configPath = join(place.dir, 'daemon.yaml')
    this.logPath = join(place.dir, 'daemon.log')
    mkdirSync(this.workDir, {recursive: true})
    writeFileSync(this.configPath, configYaml(place, this.stateDir, this.workDir, settings))
  }

  get id(): string {
    return this.place.id
  }

  get proxy(): TcpProxy | undefined {
    return this.place.proxy
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  /** Everything this node logged, all runs. */
  log(): string {
    return existsSync(this.logPath) ? readFileSync(this.logPath, 'utf8') : ''
  }

  /** The last `lines` lines of the log (for failure messages), after what the process is doing now. */
  tail(lines = 40): string {
    return `--- ${this.id} (${this.logPath}; ${this.processState()}) ---\n${this.log().split('\n').slice(-lines).join('\n')}`
  }

  /**
   * One line for a failure message: the process, its starts, its last log line's time, and how often it
   * fenced, unfenced, lost the store and got it back (the events a cluster test most often waits for).
   */
  summary(): string {
    const events = ['cluster:fenced', 'cluster:unfenced', 'store:unavailable', 'store:available', 'job:lease-lost', 'job:taken-over']
    const lines = logLines(this.log())
    const counts = events.map((event) => `${event} ${lines.filter((l) => l.event === event).length}`).join(', ')
    const last = lines.at(-1)
    const lastAt = last === undefined ? 'never' : new Date(last.at).toISOString()
    return `${this.id}: ${this.processState()}; started ${this.starts}x; last line ${lastAt}; ${counts}`
  }

  /**
   * For a failure message: whether the daemon runs, and if so its state letter (R running, S sleeping …) and
   * CPU seconds so far, so a daemon that went silent shows whether it spins, waits or is gone.
   */
  private processState(): string {
    const pid = this.pid
    if (pid === undefined) return `not running (${this.child?.exitCode ?? this.child?.signalCode ?? 'never started'})`
    try {
      // /proc/<pid>/stat: "pid (comm) state … utime stime" — fields after the closing parenthesis, utime and stime 12th and 13th of them.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
      const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / 100
      return `pid ${pid}, state ${fields[0]}, ${cpuSeconds.toFixed(1)} s CPU`
    } catch {
      return `pid ${pid}, gone`
    }
  }

  /**
   * Start the daemon; resolves once this run logged `daemon:start` (its store is open and migrated). Fails
   * with the log's tail if the process exits first or `timeoutMs` passes.
   */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.running) throw new Error(`node ${this.id} is already running`)
    const before = this.log().length
    const fd = openSync(this.logPath, 'a')
    this.starts++
    try {
      this.child = spawn(process.execPath, [CLI, 'daemon', '--config', this.configPath, '--stability-interval', '100'], {
        env: {...process.env, HYPER2KVM_STORE_PASSWORD: '', NO_COLOR: '1'},
        stdio: ['ignore', fd, fd],
      })
    } finally {
      closeSync(fd)
    }
    const child = this.child
    this.exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
    const end = Date.now() + timeoutMs
    while (Date.now() < end) {
      if (this.log().slice(before).includes('daemon:start')) return
      if (!this.running) throw new Error(`node ${this.id} exited (${child.exitCode ?? child.signalCode}) before daemon:start\n${this.tail()}`)
      await sleep(50)
    }
    throw new Error(`node ${this.id} did not log daemon:start within ${timeoutMs} ms\n${this.tail()}`)
  }

  /** SIGTERM and wait for the exit (SIGKILL after `graceMs`); resolves with the exit code (null: killed). */
  async stop(graceMs = 60_000): Promise<number | null> {
    if (!this.running) return this.child?.exitCode ?? null
    this.child!.kill('SIGTERM')
    const code = await Promise.race([this.exit!, sleep(graceMs).then(() => 'late' as const)])
    if (code !== 'late') return code
    await this.kill9()
    throw new Error(`node ${this.id} did not stop within ${graceMs} ms of SIGTERM (killed)\n${this.tail()}`)
  }

  /** `kill -9`: the process dies at once, nothing of it runs its shutdown. */
  async kill9(): Promise<void> {
    if (!this.running) return
    this.child!.kill('SIGKILL')
    await this.exit
  }

  /** Resolves with the exit code when the current run ends by itself (ctl stop, a fatal error). */
  async exited(timeoutMs: number): Promise<number | null> {
    if (this.exit === undefined) throw new Error(`node ${this.id} was never started`)
    const code = await Promise.race([this.exit, sleep(timeoutMs).then(() => 'late' as const)])
    if (code === 'late') throw new Error(`node ${this.id} still runs after ${timeoutMs} ms\n${this.tail()}`)
    return code
  }
}

/** One node's daemon configuration: shared drop/output directories and store, its own state, work dir and name. */
function configYaml(place: NodePlace, stateDir: string, workDir: string, settings: NodeSettings): string {
  return [
    'command: daemon',
    `watch_dir: ${place.dropDir}`,
    `output_dir: ${place.outputDir}`,
    `state_dir: ${stateDir}`,
    `work_dir: ${workDir}`,
    `node_id: ${place.id}`,
    `heartbeat_interval: ${settings.heartbeatInterval}`,
    `lease_ttl: ${settings.leaseTtl}`,
    `max_concurrent_jobs: ${settings.maxConcurrentJobs}`,
    // A store hiccup must not park a job for the default 5 minutes.
    'retry_policy:',
    '  max_retries: 5',
    '  retry_delay: 0.5',
    '  backoff_multiplier: 2',
    '  jitter: none',
    'store:',
    `  url: ${place.storeUrl}`,
    `  password_file: ${place.passwordFile}`,
    `  statement_timeout: ${settings.statementTimeout}`,
    `  connect_timeout: ${settings.connectTimeout}`,
    ...(settings.extra ?? []),
    '',
  ].join('\n')
}
