import {join, resolve} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {relativeInside} from '@hyper2kvm/plugin-api/host'
import {type NotificationKeys, type NotificationSettings, parseNotificationSettings} from '../notify/settings.js'
import {type EffectiveConfig, loadConfig} from '../jobs/config.js'
import {SourceDocument} from '../jobs/document.js'
import type {FlagValues} from '../jobs/job-plan.js'
import {resolveSecret} from '../secrets/resolve-secret.js'
import {parseStoreSettings, type StoreKeys} from '../store/store-config.js'
import type {PostgresSettings} from '../store/store-target.js'
import {statementBoundMs} from '../cluster/fence-rule.js'
import type {ScheduleSpec} from '../schedule/schedule.js'
import {parseSchedule} from '../schedule/schedule-keys.js'
import {type LifecycleHookSettings, parseWebhooks, type WebhookKeys} from '../webhooks/webhook-settings.js'
import {type Layout, type LayoutKind, layoutOf} from './layout.js'
import type {LogLevel} from './log-line.js'

export interface RetryPolicy {
  enabled: boolean
  maxRetries: number
  /** Seconds before the first retry. */
  retryDelay: number
  backoffMultiplier: number
  /** Seconds: no retry waits longer (the cap of the exponential backoff). */
  maxDelay: number
  /** full: each delay is uniform in [0, capped backoff] (spreads retries of many jobs); none: exactly the backoff. */
  jitter: 'full' | 'none'
  /** Error codes retried even when the catalog calls them permanent. */
  retryOn: string[]
  /** Error codes never retried. */
  noRetryOn: string[]
}

/** Something the configuration loader found worth saying once, at start, through the daemon's log. */
export interface ConfigNotice {
  level: 'warn' | 'info'
  event: string
  fields: Record<string, unknown>
  message: string
}

/** The seed's `vsphere:` connection (accepted, not used yet: sources cannot be pulled from vSphere yet). */
export interface VsphereSettings {
  server?: string
  username?: string
  datacenter?: string
  insecure: boolean
  /** Resolved through the secret store (`vsphere.password`); never logged. */
  password?: string
}

/** How a dropped file counts as one converted before: its name and size, or its content. */
export type DedupKey = 'name-size' | 'sha256' | 'md5'

/** The HTTP listener (metrics, health): `metrics:` in the configuration; off unless enabled. */
export interface MetricsConfig {
  enabled: boolean
  port: number
  /** Default 127.0.0.1; anything beyond loopback needs a token. */
  address: string
  /** `metrics.token` as written in the file (resolved with resolveSecret at start, never logged). */
  token?: string
  /** `metrics.token_file`: a file holding the token. */
  tokenFile?: string
}

/** The job service REST API (`api:`): its own listener, off unless enabled (src/api/api-piece.ts). */
export interface ApiConfig {
  enabled: boolean
  /** Default 127.0.0.1; anything beyond loopback needs a token. */
  address: string
  /** Default 8080 (the seed's). */
  port: number
  /** `api.token` as written in the file (resolved with resolveSecret at start, never logged). */
  token?: string
  /** `api.token_file`: a file holding the token. */
  tokenFile?: string
  /** Largest request body, bytes (default 1 MiB: the job-file limit). */
  maxBodyBytes: number
  /** Token bucket per token (per client address without one). */
  rateLimit: {requestsPerMinute: number; burst: number}
  /** Concurrent GET /api/v1/events streams. */
  maxEventStreams: number
}

export interface DaemonConfig {
  configFile?: string
  /** watch, workflow or manifest workflow, with its directories. */
  layout: Layout
  outputDir: string
  /** work_dir: where job work directories are created (JobSettings.workDir); default inside each output directory. */
  workDir?: string
  maxConcurrentJobs: number
  /** Seconds a file may keep growing before a warning is logged (it stays pending and is re-checked). */
  fileStableTimeout: number
  /** Milliseconds between two stability checks: file_stable_interval (seconds, default 1) or --stability-interval. */
  stabilityIntervalMs: number
  /** Consecutive identical size+mtime checks before a file is claimed (file_stable_checks, default 3). */
  fileStableChecks: number
  enableDeduplication: boolean
  /** deduplication_hash, or md5 when deduplication_use_md5 (the seed key), else sha256: by name and size only when chosen (anyone knowing both could make a different upload count as a duplicate). */
  dedupKey: DedupKey
  archiveProcessed: boolean
  retry: RetryPolicy
  verbose: number
  logFile?: string
  /** log_format: text (`key=value` lines, the default) or json (one JSON object per line). */
  logFormat: 'text' | 'json'
  /** The least severe level logged: --log-level, else log_level, else from verbose (0 warn, 1-2 info, 3 debug). */
  logLevel: LogLevel
  /** The process umask the daemon sets at start (`umask` key, octal string; default 0o027: nothing it creates is world-readable). */
  umask: number
  /** Directories (besides a claim's own files) that job files may name inputs in (a dropped symlink is refused wherever it points). */
  allowedInputDirs: string[]
  /** Default conversion settings (the config's job keys) as convert flag values. */
  jobDefaults: FlagValues
  /** qemu runs in the bubblewrap sandbox (the config's `sandbox`, default true) for EVERY job: dropped job files cannot turn it off. */
  sandbox: boolean
  /** `notifications:` (webhooks, email, stall detection), secrets resolved; read at start (a SIGHUP does not change them). */
  notifications: NotificationSettings
  /** `webhooks:` (lifecycle webhooks, HyperSDK's list), secrets resolved; read at start (a SIGHUP does not change them). */
  webhooks: LifecycleHookSettings[]
  /** metrics: the HTTP listener with /metrics and /api/v1/health, /api/v1/ready (http/http-piece.ts). */
  metrics: MetricsConfig
  /** api: the job service REST API on its own listener (src/api/api-piece.ts). */
  api: ApiConfig
  /** vsphere: (validated; not used yet). */
  vsphere?: VsphereSettings
  /** `schedules:` (src/schedule/): synced into the store at start and on SIGHUP; the file owns them. */
  schedules: ScheduleSpec[]
  /** `store:` (or `database:` with a url): the PostgreSQL job store shared by several daemons; absent: SQLite in the state directory. Read at start. */
  store?: PostgresSettings
  /**
   * state_dir: this daemon's own state (lock, control socket, children records, stats, node_id file, the
   * SQLite store). Default `output_dir/.daemon`. Several daemons sharing one output_dir (a PostgreSQL store)
   * each need their own: it must never be shared, nor lie inside the drop directory.
   */
  stateDir: string
  /** node_id: this daemon's name in a cluster sharing one store; absent: generated once and kept in state_dir/node_id. */
  nodeId?: string
  /** heartbeat_interval (seconds, default 5): how often the daemon records that it is alive and renews its job leases. */
  heartbeatInterval: number
  /** lease_ttl (seconds, default 30): a running job whose lease is not renewed for this long is taken over by another node. */
  leaseTtl: number
  /** Logged once when the daemon starts (not on reload): keys accepted but not used yet, secrets in plain text. */
  notices: ConfigNotice[]
}

/** Keys of the seeds' configurations that validate but have no feature behind them yet, and why. */
const NOT_USED_YET: Record<string, string> = {
  database: 'database.path is HyperSDK\'s SQLite file; the embedded store is output_dir/.daemon/jobs.db (database.url or store.url names a PostgreSQL store)',
  vsphere: 'sources cannot be pulled from vSphere yet',
}

/** The settings SIGHUP may change while jobs run. */
export const LIVE_KEYS = ['maxConcurrentJobs', 'fileStableTimeout', 'fileStableChecks', 'enableDeduplication', 'dedupKey', 'archiveProcessed', 'retry', 'verbose', 'allowedInputDirs', 'logLevel'] as const

export interface DaemonFlagValues {
  config?: string
  'watch-dir'?: string
  'workflow-dir'?: string
  'manifest-workflow-dir'?: string
  'workflow-mode'?: boolean
  'manifest-workflow-mode'?: boolean
  'output-dir'?: string
  'max-concurrent-jobs'?: number
  'stability-interval'?: number
  /** The global --log-level, only when given on the command line (its default must not hide log_level). */
  'log-level'?: LogLevel
}

interface DaemonKeys {
  watch_dir?: string
  output_dir?: string
  work_dir?: string
  max_concurrent_jobs?: number
  file_stable_timeout?: number
  file_stable_checks?: number
  file_stable_interval?: number
  enable_deduplication?: boolean
  deduplication_use_md5?: boolean
  deduplication_hash?: DedupKey
  allowed_input_dirs?: string[]
  archive_processed?: boolean
  retry_policy?: {enabled?: boolean; max_retries?: number; retry_delay?: number; backoff_multiplier?: number; max_delay?: number; jitter?: 'full' | 'none'; retry_on?: string[]; no_retry_on?: string[]}
  verbose?: number
  log_file?: string
  log_format?: 'text' | 'json'
  log_level?: LogLevel
  umask?: string
  workflow_mode?: boolean
  workflow_dir?: string
  vsphere?: {server?: string; username?: string; password?: string; password_file?: string; datacenter?: string; insecure?: boolean}
  manifest_workflow_mode?: boolean
  manifest_workflow_dir?: string
  notifications?: NotificationKeys
  webhooks?: WebhookKeys[]
  metrics?: {enabled?: boolean; port?: number; address?: string; token?: string; token_file?: string}
  schedules?: unknown[]
  api?: {enabled?: boolean; port?: number; address?: string; token?: string; token_file?: string; max_body_bytes?: number; rate_limit?: {requests_per_minute?: number; burst?: number}; max_event_streams?: number}
  store?: StoreKeys
  database?: StoreKeys
  state_dir?: string
  node_id?: string
  heartbeat_interval?: number
  lease_ttl?: number
}

/**
 * Read and validate the daemon configuration (the job-file schema machinery: precise file:line:column
 * messages), then apply the flags. Conversion defaults come from the same loadConfig() as every command.
 */
export async function loadDaemonConfig(flags: DaemonFlagValues): Promise<DaemonConfig> {
  const effective: EffectiveConfig = await loadConfig({configPath: flags.config})
  let keys: DaemonKeys = {}
  let baseDir = process.cwd()
  if (effective.file) {
    const doc = await SourceDocument.read(effective.file)
    keys = doc.value as DaemonKeys
    baseDir = doc.dir
  }
  const path = (value: string | undefined): string | undefined => (value === undefined ? undefined : resolve(baseDir, value))
  const pick = (flag: string | undefined, key: string | undefined): string | undefined => (flag === undefined ? path(key) : resolve(flag))
  const watchDir = pick(flags['watch-dir'], keys.watch_dir)
  const workflowDir = pick(flags['workflow-dir'], keys.workflow_dir)
  const manifestDir = pick(flags['manifest-workflow-dir'], keys.manifest_workflow_dir)
  const outputDir = pick(flags['output-dir'], keys.output_dir)
  const workflow = flags['workflow-mode'] ?? keys.workflow_mode ?? false
  const manifestWorkflow = flags['manifest-workflow-mode'] ?? keys.manifest_workflow_mode ?? false
  const where = effective.file ? ` (in ${effective.file} or on the command line)` : ''
  if (workflow && manifestWorkflow) {
    throw new H2KError('H2K_USAGE', `workflow_mode and manifest_workflow_mode are both on${where}; one daemon runs one layout.`, {
      suggestions: ['Run one daemon per layout, each with its own output_dir.'],
    })
  }
  const kind: LayoutKind = workflow ? 'workflow' : manifestWorkflow ? 'manifest-workflow' : 'watch'
  const root = kind === 'workflow' ? workflowDir : kind === 'manifest-workflow' ? manifestDir : watchDir
  const rootKey = {'manifest-workflow': 'manifest_workflow_dir (--manifest-workflow-dir)', watch: 'watch_dir (--watch-dir)', workflow: 'workflow_dir (--workflow-dir)'}[kind]
  const missing = [root ? undefined : rootKey, outputDir ? undefined : 'output_dir (--output-dir)'].filter(Boolean)
  if (missing.length > 0) {
    throw new H2KError('H2K_USAGE', `The daemon (${kind} layout) needs ${missing.join(' and ')}${effective.file ? ` (not set in ${effective.file})` : ''}.`, {
      suggestions: ['Pass --config daemon.yaml (see examples/daemon.yaml, examples/workflow-daemon.yaml) or the directories as flags.'],
    })
  }
  const layout = layoutOf(kind, root!)
  if (keys.log_file !== undefined && relativeInside(layout.inbox, path(keys.log_file)!) !== undefined) {
    // Whoever drops files could replace it (or its directory) with a link between two reopens, and the daemon would claim it.
    throw new H2KError('H2K_USAGE', `log_file ${path(keys.log_file)} is inside the drop directory ${layout.inbox}.`, {suggestions: ['Put log_file where only the daemon\'s user can write, e.g. /var/log/hyper2kvm/daemon.log (the unit\'s LogsDirectory=).']})
  }
  const retry = keys.retry_policy ?? {}
  const notices: ConfigNotice[] = []
  for (const [key, why] of Object.entries(NOT_USED_YET)) {
    if ((keys as Record<string, unknown>)[key] !== undefined && !(key === 'database' && keys.database?.url !== undefined)) notices.push({event: 'config:not-used-yet', fields: {key}, level: 'warn', message: `${key}: accepted but not used yet: ${why}`})
  }
  const vsphere = keys.vsphere === undefined ? undefined : await vsphereSettings(keys.vsphere, baseDir, notices)
  const store = await parseStoreSettings(keys, baseDir, where, (message) => notices.push({event: 'config:plain-secret', fields: {key: 'store.password'}, level: 'warn', message}))
  const schedules = await configSchedules(keys.schedules ?? [], baseDir, effective.file ?? 'the configuration', notices)
  const webhooks = await parseWebhooks(keys.webhooks, baseDir, (message) =>
    notices.push({event: message.startsWith('SECRET_IN_CONFIG') ? 'config:plain-secret' : 'config:webhooks', fields: {key: 'webhooks'}, level: 'warn', message}),
  )
  const cluster = clusterSettings(keys, outputDir!, path(keys.state_dir), layout, where, store)
  const {'output-dir': _outputDir, ...jobDefaults} = effective.flags
  return {
    allowedInputDirs: (keys.allowed_input_dirs ?? []).map((d) => resolve(baseDir, d)),
    archiveProcessed: keys.archive_processed ?? true,
    configFile: effective.file,
    dedupKey: keys.deduplication_hash ?? (keys.deduplication_use_md5 ? 'md5' : 'sha256'),
    enableDeduplication: keys.enable_deduplication ?? false,
    fileStableChecks: keys.file_stable_checks ?? 3,
    fileStableTimeout: keys.file_stable_timeout ?? 60,
    jobDefaults,
    layout,
    logFile: path(keys.log_file),
    logFormat: keys.log_format ?? 'text',
    logLevel: flags['log-level'] ?? keys.log_level ?? levelOfVerbose(keys.verbose ?? 1),
    // The seed's default (3); each job is one qemu-img (and an appliance while fixing): lower it on small hosts.
    maxConcurrentJobs: flags['max-concurrent-jobs'] ?? keys.max_concurrent_jobs ?? 3,
    notifications: await parseNotificationSettings(keys.notifications, baseDir),
    metrics: {
      address: keys.metrics?.address ?? '127.0.0.1',
      enabled: keys.metrics?.enabled ?? false,
      port: keys.metrics?.port ?? 9090,
      ...(keys.metrics?.token === undefined ? {} : {token: keys.metrics.token}),
      ...(keys.metrics?.token_file === undefined ? {} : {tokenFile: resolve(baseDir, keys.metrics.token_file)}),
    },
    api: {
      address: keys.api?.address ?? '127.0.0.1',
      enabled: keys.api?.enabled ?? false,
      maxBodyBytes: keys.api?.max_body_bytes ?? 1024 * 1024,
      maxEventStreams: keys.api?.max_event_streams ?? 16,
      port: keys.api?.port ?? 8080,
      rateLimit: {burst: keys.api?.rate_limit?.burst ?? 30, requestsPerMinute: keys.api?.rate_limit?.requests_per_minute ?? 120},
      ...(keys.api?.token === undefined ? {} : {token: keys.api.token}),
      ...(keys.api?.token_file === undefined ? {} : {tokenFile: resolve(baseDir, keys.api.token_file)}),
    },
    notices,
    outputDir: outputDir!,
    sandbox: jobDefaults.sandbox !== false,
    schedules,
    retry: {
      backoffMultiplier: retry.backoff_multiplier ?? 2,
      enabled: retry.enabled ?? true,
      jitter: retry.jitter ?? 'full',
      // One hour: an exponential backoff from 300 s reaches it at the 5th retry.
      maxDelay: retry.max_delay ?? 3600,
      maxRetries: retry.max_retries ?? 3,
      noRetryOn: retry.no_retry_on ?? [],
      retryOn: retry.retry_on ?? [],
      // The seed's default: 5 minutes before the first retry (then x backoff_multiplier).
      retryDelay: retry.retry_delay ?? 300,
    },
    stabilityIntervalMs: flags['stability-interval'] ?? Math.round((keys.file_stable_interval ?? 1) * 1000),
    umask: Number.parseInt(keys.umask ?? '0027', 8),
    verbose: keys.verbose ?? 1,
    ...(vsphere === undefined ? {} : {vsphere}),
    ...(store === undefined ? {} : {store}),
    ...cluster,
    webhooks,
    workDir: path(keys.work_dir),
  }
}

/** A node_id as it may appear in logs, ctl output and file names: letters, digits, `.`, `_`, `-`, at most 64. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** state_dir, node_id, heartbeat_interval and lease_ttl, checked. */
function clusterSettings(keys: DaemonKeys, outputDir: string, configured: string | undefined, layout: Layout, where: string, store: PostgresSettings | undefined): Pick<DaemonConfig, 'heartbeatInterval' | 'leaseTtl' | 'nodeId' | 'stateDir'> {
  const stateDir = configured ?? join(outputDir, '.daemon')
  if (configured !== undefined && (relativeInside(layout.inbox, stateDir) !== undefined || relativeInside(stateDir, layout.inbox) !== undefined)) {
    throw new H2KError('H2K_USAGE', `state_dir ${stateDir} overlaps the drop directory ${layout.inbox}${where}.`, {
      suggestions: ['Put state_dir where only the daemon\'s user can write, e.g. /var/lib/hyper2kvm/<node> (the unit\'s StateDirectory=).'],
    })
  }
  if (keys.node_id !== undefined && !NODE_ID_PATTERN.test(keys.node_id)) {
    throw new H2KError('H2K_USAGE', `node_id must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit)${where}.`, {suggestions: ['Use the host name, e.g. node_id: conv-01.']})
  }
  const heartbeatInterval = keys.heartbeat_interval ?? 5
  const leaseTtl = keys.lease_ttl ?? 30
  for (const [key, value] of [['heartbeat_interval', heartbeatInterval], ['lease_ttl', leaseTtl]] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new H2KError('H2K_USAGE', `${key} must be a positive number of seconds${where}.`, {suggestions: ['The defaults: heartbeat_interval: 5, lease_ttl: 30.']})
  }
  if (leaseTtl < 3 * heartbeatInterval) {
    throw new H2KError('H2K_USAGE', `lease_ttl (${leaseTtl} s) must be at least 3 × heartbeat_interval (${heartbeatInterval} s)${where}: a node must be able to miss a heartbeat without losing its jobs.`, {suggestions: ['The defaults: heartbeat_interval: 5, lease_ttl: 30.']})
  }
  if (store !== undefined) {
    // Self-fencing (src/cluster/fence-rule.ts) needs lease_ttl − 2 × heartbeat − B > heartbeat, B being one store call's bound.
    const boundS = statementBoundMs(store) / 1000
    if (leaseTtl < 3 * heartbeatInterval + boundS) {
      throw new H2KError('H2K_USAGE', `lease_ttl (${leaseTtl} s) must be at least 3 × heartbeat_interval (${heartbeatInterval} s) + store.statement_timeout (${boundS} s)${where} with a PostgreSQL store: a node that loses the store must stop its jobs before another node may take them over.`, {
        suggestions: ['Raise lease_ttl, or lower heartbeat_interval (the defaults: heartbeat_interval: 5, lease_ttl: 30, statement_timeout: 5).'],
      })
    }
  }
  return {heartbeatInterval, leaseTtl, stateDir, ...(keys.node_id === undefined ? {} : {nodeId: keys.node_id})}
}

/** `schedules:` checked (cron, zone, window, template; relative paths against the file's directory), ids unique. */
async function configSchedules(items: unknown[], baseDir: string, file: string, notices: ConfigNotice[]): Promise<ScheduleSpec[]> {
  const specs = await Promise.all(items.map((item, index) =>
    parseSchedule(item, {baseDir, source: 'config', warn: (message) => notices.push({event: 'config:schedule', fields: {index}, level: 'warn', message}), where: `${file}: schedules[${index}]`}),
  ))
  const seen = new Set<string>()
  for (const spec of specs) {
    if (seen.has(spec.id)) throw new H2KError('H2K_USAGE', `${file}: two schedules have the id ${spec.id}.`, {suggestions: ['Give every schedule its own id.']})
    seen.add(spec.id)
  }
  return specs
}

/** The seed's `verbose`: 0 warnings and errors, 1 and 2 info (2 adds the stack to error files), 3 debug. */
export function levelOfVerbose(verbose: number): LogLevel {
  return verbose <= 0 ? 'warn' : verbose >= 3 ? 'debug' : 'info'
}

/** vsphere: with its password resolved through the secret store (a plain value warns, and is redacted from then on). */
async function vsphereSettings(keys: NonNullable<DaemonKeys['vsphere']>, baseDir: string, notices: ConfigNotice[]): Promise<VsphereSettings> {
  const secret = await resolveSecret({file: keys.password_file === undefined ? undefined : resolve(baseDir, keys.password_file), name: 'vsphere.password', value: keys.password}, (message) =>
    notices.push({event: 'config:plain-secret', fields: {key: 'vsphere.password'}, level: 'warn', message}),
  )
  return {
    datacenter: keys.datacenter,
    insecure: keys.insecure ?? false,
    server: keys.server,
    username: keys.username,
    ...(secret === undefined ? {} : {password: secret.value}),
  }
}
