import {fstatSync} from 'node:fs'

import {pino, type Logger} from 'pino'

import {redactConfig, redactSecrets} from '../secrets/redact.js'
import {LogFile} from './log-file.js'
import {logLine, type LogLevel} from './log-line.js'

export type LogFormat = 'text' | 'json'
export type {LogLevel} from './log-line.js'

export interface DaemonLogSettings {
  /** text: `<time> <LEVEL> <event> key=value … message` (log-line.ts); json: one pino JSON object per line. */
  format: LogFormat
  /** The least severe level written. */
  level: LogLevel
  /** log_file: when set, lines go to this file only (stderr gets the start line as a notice); else to stderr only. */
  file?: string
  /** Prefix stderr lines with their syslog priority (`<3>` …) for journald; default: when stderr is the journal. */
  journal?: boolean
}

/** syslog priorities journald reads from a `<N>` line prefix (SyslogLevelPrefix=, on by default). */
const PRIORITY: Record<LogLevel, number> = {debug: 7, error: 3, info: 6, warn: 4}

/**
 * Whether our stderr is the journal: systemd sets JOURNAL_STREAM to the `device:inode` of the stream it
 * connected; a redirected stderr (a pipe, a file) no longer matches, even with the variable inherited.
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env, fd = 2): boolean {
  const stream = env.JOURNAL_STREAM
  if (!stream) return false
  try {
    const info = fstatSync(fd)
    return stream === `${info.dev}:${info.ino}`
  } catch {
    return false // no stderr at all: not the journal
  }
}

const RANK: Record<LogLevel, number> = {debug: 3, error: 0, info: 2, warn: 1}
/** Longest field value and message written (after redaction): a hostile name cannot make a line unbounded. */
export const MAX_FIELD_CHARS = 2048
export const MAX_MESSAGE_CHARS = 8192
/** Our field names → their JSON names (text lines keep `job=`, `intake=`: people and tests grep them). */
const JSON_NAMES: Record<string, string> = {intake: 'intake_id', job: 'job_id'}
/** Keys pino writes itself; a field of the same name is renamed `<name>_field` (or dropped when it says the same). */
const RESERVED = new Set(['level', 'time', 'pid', 'event', 'msg'])
/** Characters JSON.stringify leaves raw that a terminal or a line splitter may act on: DEL, C1, U+2028/2029. */
const RAW_CONTROLS = /[\u007f-\u009f\u2028\u2029]/g
/** The event that is also announced on stderr when lines go to log_file (supervisors see the start and where the log is). */
const ANNOUNCED = 'daemon:start'

/** A line as a tap sees it: redacted and bounded like the written line, before it is formatted. */
export interface TappedLine {
  at: string
  level: LogLevel
  event: string
  fields: Record<string, unknown>
  message: string
}

/** Something that wants a copy of lines (each job's own log in the store): called synchronously, must not log. */
export type LogTap = (line: TappedLine) => void

/** The reader of process.stderr went away (EPIPE): its lines are dropped from then on (log_file, when set, still has them). */
let stderrGone = false
let stderrGuarded = false

/**
 * `daemon 2>&1 | logger` whose reader exits: a write fails with EPIPE, emitted as an 'error' event that,
 * with no listener, would end the daemon. With this one listener it goes on working; only stderr is gone.
 */
function guardStderr(): void {
  if (stderrGuarded) return
  stderrGuarded = true
  process.stderr.on('error', () => (stderrGone = true))
}

/**
 * The daemon's log: one writer for every line, in text or JSON, at one level. Every value is redacted
 * (registered secrets anywhere, the values of secret-named keys: redact.ts) and bounded before it is
 * formatted, redaction first (a cut could leave half a secret); untrusted strings stay escaped (log-line.ts
 * for text, JSON escaping plus DEL/C1/U+2028 for JSON), so one event is always one line.
 *
 * One sink, never two (no double lines under journald): with `log_file` the lines go to the file only
 * (opened once, O_APPEND|O_NOFOLLOW, mode 0640, one synchronous write per line, reopened by `reopen()`),
 * and stderr gets only the `daemon:start` line, shortened to where the log goes; without it they go to
 * stderr only. A line the file refuses (disk full) goes to stderr instead, with one notice.
 */
export class DaemonLog {
  private level: LogLevel
  private readonly style: LogFormat
  private readonly file?: LogFile
  private readonly json?: Logger
  /** The line pino just formatted (its destination is this object, written synchronously). */
  private formatted = ''
  private fileFailing = false
  private closed = false
  private readonly journal: boolean
  private readonly taps = new Set<LogTap>()
  private tapFailing = false

  /** Opens log_file at once: a symlink or a non-regular file there is an H2KError (the daemon does not start). */
  constructor(settings: DaemonLogSettings, private readonly stderr: {write(line: string): unknown} = process.stderr) {
    this.level = settings.level
    this.style = settings.format
    this.journal = settings.journal ?? stderrIsJournal()
    if (stderr === process.stderr) guardStderr()
    if (settings.file) this.file = new LogFile(settings.file)
    if (this.style === 'json') {
      this.json = pino(
        {
          base: {pid: process.pid},
          formatters: {level: (label) => ({level: label})},
          level: 'debug',
          timestamp: pino.stdTimeFunctions.isoTime,
        },
        {write: (line: string) => void (this.formatted = line)},
      )
    }
  }

  /**
   * A copy of every line that names a job (`job` field) at info or more severe (debug too when the daemon
   * logs debug), redacted and bounded as written. Returns the function that removes it.
   */
  addTap(tap: LogTap): () => void {
    this.taps.add(tap)
    return () => this.taps.delete(tap)
  }

  setLevel(level: LogLevel): void {
    this.level = level
  }

  log(level: LogLevel, event: string, fields: Record<string, unknown> = {}, message = ''): void {
    // Whatever the level: one line on stderr says the daemon started and where its log goes.
    if (this.file && event === ANNOUNCED) this.toStderr(level, this.render(level, event, {log_file: this.file.path, pid: process.pid}, 'further lines go to log_file'))
    const tapped = this.taps.size > 0 && typeof fields.job === 'string' && RANK[level] <= Math.max(RANK.info, RANK[this.level])
    if (RANK[level] > RANK[this.level] && !tapped) return
    const clean = bounded(redactConfig(Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)))) as Record<string, unknown>
    const text = cut(redactSecrets(message), MAX_MESSAGE_CHARS)
    if (tapped) this.toTaps({at: new Date().toISOString(), event, fields: clean, level, message: text})
    if (RANK[level] > RANK[this.level]) return
    const line = this.render(level, event, clean, text)
    if (this.file && !this.closed) this.toFile(level, line)
    else this.toStderr(level, line)
  }

  /** Logrotate renamed the file: write into a new one at the path. A refusal is logged and the old file kept. */
  reopen(): void {
    if (!this.file || this.closed) return
    try {
      this.file.reopen()
      this.fileFailing = false
      this.log('info', 'daemon:log-reopened', {log_file: this.file.path})
    } catch (error) {
      this.log('error', 'daemon:log-reopen-failed', {log_file: this.file.path}, `${(error as Error).message} (still writing to the file opened before)`)
    }
  }

  /** Close log_file; a line logged after this (a late signal) goes to stderr. */
  close(): void {
    this.closed = true
    this.file?.close()
  }

  private toTaps(line: TappedLine): void {
    for (const tap of this.taps) {
      try {
        tap(line)
        this.tapFailing = false
      } catch (error) {
        // Said once until a copy succeeds again: the line itself is still written below.
        if (!this.tapFailing) this.toStderr('warn', this.render('warn', 'daemon:log-tap-failed', {job: line.fields.job}, `${(error as Error).message}: the job's log in the store misses lines until a write succeeds again`))
        this.tapFailing = true
      }
    }
  }

  private toStderr(level: LogLevel, line: string): void {
    if (this.stderr === process.stderr && stderrGone) return
    this.stderr.write(this.journal ? `<${PRIORITY[level]}>${line}` : line)
  }

  private toFile(level: LogLevel, line: string): void {
    try {
      this.file!.write(line)
      this.fileFailing = false
    } catch (error) {
      if (!this.fileFailing) {
        this.fileFailing = true
        this.toStderr('error', this.render('error', 'daemon:log-write-failed', {log_file: this.file!.path}, `${(error as Error).message}: lines go to stderr until a write succeeds again`))
      }
      this.toStderr(level, line)
    }
  }

  private render(level: LogLevel, event: string, fields: Record<string, unknown>, message: string): string {
    if (!this.json) return logLine(level, event, fields, message)
    const record: Record<string, unknown> = {event}
    for (const [key, value] of Object.entries(fields)) {
      const name = JSON_NAMES[key] ?? key
      if (RESERVED.has(name)) {
        if (name === 'pid' && value === process.pid) continue
        record[`${name}_field`] = value
      } else record[name] = value
    }
    this.formatted = ''
    if (message) this.json[level](record, message)
    else this.json[level](record)
    return this.formatted.replace(RAW_CONTROLS, (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`)
  }
}

/** A value with every string cut to MAX_FIELD_CHARS (objects and arrays walked; bigints as text, which JSON lacks). */
function bounded(value: unknown): unknown {
  if (typeof value === 'string') return cut(value, MAX_FIELD_CHARS)
  if (typeof value === 'bigint') return String(value)
  if (Array.isArray(value)) return value.map((v) => bounded(v))
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, bounded(v)]))
  return value
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…(+${text.length - max} chars)`
}
