import type {ExecaError} from 'execa'
import {constants} from 'node:os'
import type {YAMLError} from 'yaml'

import {H2KError, type Phase, isH2KError} from '@hyper2kvm/plugin-api'

/** The Debian package that provides each tool we run, for "not installed" suggestions. */
const TOOL_PACKAGES: Readonly<Record<string, string>> = {
  guestfish: 'libguestfs-tools',
  prlimit: 'util-linux',
  'qemu-img': 'qemu-utils',
  'qemu-io': 'qemu-utils',
  'qemu-system-x86_64': 'qemu-system-x86',
  setpriv: 'util-linux',
  tar: 'tar',
}

export interface ForeignErrorContext {
  phase?: Phase
  stage?: string
  /** The executable that was run, when the error comes from a subprocess. */
  tool?: string
  /** The path being read or written, when the error comes from the file system. */
  path?: string
  /** Whether the subprocess ran under resource limits (so a kill means the limit was hit). */
  limited?: boolean
  /** What was being done, to start the message with ("Cannot add a job"). */
  operation?: string
  /** The subprocess ran inside bwrap, which reports a tool killed by signal N as exit code 128+N. */
  sandboxed?: boolean
}

/** H2K_TOOL_MISSING for a tool that is not on PATH, naming the Debian package that provides it. */
export function toolMissing(tool: string, context: ForeignErrorContext = {}, cause?: unknown): H2KError {
  const pkg = TOOL_PACKAGES[tool]
  return new H2KError('H2K_TOOL_MISSING', `${tool} is not installed or not on PATH.`, {
    cause,
    phase: context.phase,
    stage: context.stage,
    suggestions: pkg ? [`Install it: apt-get install ${pkg}`] : undefined,
    details: {tool},
  })
}

/** The signal name behind a sandboxed tool's exit code 128+N. */
function signalOfStatus(exitCode: number | undefined): string | undefined {
  if (exitCode === undefined || exitCode <= 128) return undefined
  return Object.entries(constants.signals).find(([, number]) => number === exitCode - 128)?.[0]
}

/** Keep the last `lines` non-empty lines of a tool's stderr: the part that says what went wrong. */
export function stderrTail(stderr: unknown, lines = 8): string {
  const text = typeof stderr === 'string' ? stderr : ''
  return text
    .split(/\r?\n/)
    .map((line) => line.trimEnd())
    .filter((line) => line.length > 0)
    .slice(-lines)
    .join('\n')
}

function mapExecaError(error: ExecaError, context: ForeignErrorContext): H2KError {
  const tool = context.tool ?? String(error.command).split(' ')[0] ?? 'tool'
  const base = {cause: error, phase: context.phase, stage: context.stage}
  if (error.isCanceled || error.isGracefullyCanceled) {
    return new H2KError('H2K_CANCELLED', `${tool} was stopped because the job was cancelled.`, base)
  }
  if (error.code === 'ENOENT' && error.exitCode === undefined) return toolMissing(tool, context, error)
  const tail = stderrTail(error.stderr)
  const signal = error.signal ?? (context.sandboxed ? signalOfStatus(error.exitCode) : undefined)
  const details = {command: error.command, exitCode: error.exitCode, signal, stderr: tail}
  const limitSignal = signal === 'SIGXCPU' || signal === 'SIGKILL' || signal === 'SIGSEGV' || signal === 'SIGABRT'
  if (context.limited && (limitSignal || /cannot allocate memory|failed to allocate|out of memory/i.test(tail))) {
    return new H2KError('H2K_RESOURCE_LIMIT', `${tool} exceeded its resource limits while reading the input${tail ? `: ${tail}` : ''}.`, {...base, details})
  }
  const why = tail || (signal ? `killed by ${signal}` : `exit code ${error.exitCode ?? 'unknown'}`)
  return new H2KError('H2K_TOOL_FAILED', `${tool} failed: ${why}`, {...base, details})
}

function mapNodeError(error: NodeJS.ErrnoException, context: ForeignErrorContext): H2KError | undefined {
  const base = {cause: error, phase: context.phase, stage: context.stage}
  const where = context.path ?? error.path ?? 'a file'
  switch (error.code) {
    case 'ENOENT':
      return new H2KError('H2K_INPUT_NOT_FOUND', `${where} does not exist.`, {...base, details: {path: where}})
    case 'EACCES':
    case 'EPERM':
      return new H2KError('H2K_INPUT_NOT_FOUND', `Permission denied: ${where}.`, {
        ...base,
        suggestions: ['Run as a user that can read the input and write the output directory.'],
        details: {path: where},
      })
    case 'ENOSPC':
    case 'EDQUOT':
      return new H2KError('H2K_NO_SPACE', `No space left while writing ${where}.`, {...base, details: {path: where}})
    case 'EISDIR':
      return new H2KError('H2K_INPUT_UNRECOGNIZED', `${where} is a directory, not a disk image.`, {...base, details: {path: where}})
    case 'ABORT_ERR':
      return new H2KError('H2K_CANCELLED', 'The job was cancelled.', base)
    default:
      return undefined
  }
}

/**
 * better-sqlite3 throws SqliteError (name 'SqliteError', code 'SQLITE_BUSY', 'SQLITE_CORRUPT', ...) for
 * everything SQLite reports: the daemon's job store could not be opened, read or written.
 */
function mapSqliteError(error: unknown, context: ForeignErrorContext): H2KError | undefined {
  if (!(error instanceof Error) || error.name !== 'SqliteError') return undefined
  const code = (error as {code?: unknown}).code
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return undefined
  const where = context.path ?? 'the job store'
  return new H2KError('H2K_STORE_FAILED', `${context.operation ?? 'The job store failed'} (${where}): ${error.message}`, {
    cause: error,
    details: {path: where, sqliteCode: code},
    phase: context.phase,
    stage: context.stage,
  })
}

/**
 * The PostgreSQL engine's PostgresError (src/store/postgres-db.ts, recognised by its name): SQL the server
 * refused. A server that cannot be reached is already an H2KError (H2K_STORE_UNAVAILABLE) there.
 */
function mapPostgresError(error: unknown, context: ForeignErrorContext): H2KError | undefined {
  if (!(error instanceof Error) || error.name !== 'PostgresError') return undefined
  const code = (error as {code?: unknown}).code
  const where = context.path ?? 'the job store'
  return new H2KError('H2K_STORE_FAILED', `${context.operation ?? 'The job store failed'} (${where}): ${error.message}`, {
    cause: error,
    details: {path: where, ...(typeof code === 'string' ? {sqlState: code} : {})},
    phase: context.phase,
    stage: context.stage,
  })
}

// The errors of execa, yaml and ajv are recognised by their shape, not with instanceof: importing their classes
// here loaded all three libraries (~240 modules) into every command through BaseCommand, `--help` included.

/** execa's error (also what a failed run returns with `reject: false`): its prototype's name is 'ExecaError'. */
function isExecaError(error: unknown): error is ExecaError {
  return error instanceof Error && error.name === 'ExecaError' && 'isCanceled' in error
}

/** yaml's YAMLParseError and YAMLWarning (both extend YAMLError): a name, a code and a source position. */
function isYamlError(error: unknown): error is YAMLError {
  return error instanceof Error && (error.name === 'YAMLParseError' || error.name === 'YAMLWarning') && typeof (error as {code?: unknown}).code === 'string' && Array.isArray((error as {pos?: unknown}).pos)
}

/** ajv's ValidationError (thrown by async schemas and validate-or-throw helpers): `ajv: true` and its `errors`. */
function isAjvValidationError(error: unknown): error is Error & {errors: Array<{instancePath?: string; message?: string}>} {
  return error instanceof Error && (error as {ajv?: unknown}).ajv === true && Array.isArray((error as {errors?: unknown}).errors)
}

/** `file:line:column` of a yaml library error (lines and columns count from 1). */
function yamlWhere(error: YAMLError, file: string): string {
  const pos = error.linePos?.[0]
  return pos ? `${file}:${pos.line}:${pos.col}` : file
}

/**
 * Errors of the job-file machinery (yaml parse errors, alias bombs, ajv validation errors) are usage
 * errors of a file: H2K_JOB_INVALID with the file and, when known, its line and column.
 */
function mapDocumentError(error: unknown, context: ForeignErrorContext): H2KError | undefined {
  const file = context.path ?? 'the file'
  const base = {cause: error, phase: context.phase, stage: context.stage}
  if (isYamlError(error)) {
    const where = yamlWhere(error, file)
    const pos = error.linePos?.[0]
    const text = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
    return new H2KError('H2K_JOB_INVALID', `${where}: ${text}`, {...base, details: {column: pos?.col, file, line: pos?.line, yamlCode: error.code}})
  }
  // yaml's guard against alias expansion ("billion laughs"): toJS({maxAliasCount}) throws a ReferenceError.
  if (error instanceof ReferenceError && /alias count|resource exhaustion/i.test(error.message)) {
    return new H2KError('H2K_JOB_INVALID', `${file}: too many YAML alias expansions (a "YAML bomb"?); refusing to expand it.`, {
      ...base,
      details: {file},
      suggestions: ['Write the values out instead of nesting aliases of aliases.'],
    })
  }
  // toJS() also throws a ReferenceError for an alias whose anchor is not defined before it (found by fuzzing).
  if (error instanceof ReferenceError && /^Unresolved alias/.test(error.message)) {
    return new H2KError('H2K_JOB_INVALID', `${file}: a YAML alias (*name) refers to an anchor (&name) that is not defined before it.`, {...base, details: {file}})
  }
  if (isAjvValidationError(error)) {
    const lines = error.errors.map((e) => `${file}: ${e.instancePath || '/'} ${e.message ?? 'is invalid'}`)
    return new H2KError('H2K_JOB_INVALID', lines.join('\n'), {...base, details: {file}})
  }
  return undefined
}

/** Runs `fn` with its foreign errors mapped at this one boundary (an H2KError passes through as it is). */
export function withMappedErrors<T>(context: ForeignErrorContext, fn: () => T): T {
  try {
    return fn()
  } catch (error) {
    throw mapForeignError(error, context)
  }
}

/**
 * The one boundary where errors from other libraries (execa, node:fs, better-sqlite3, AbortSignal, ...) become H2KErrors.
 * An H2KError passes through unchanged, except that a missing phase/stage is filled in.
 */
export function mapForeignError(error: unknown, context: ForeignErrorContext = {}): H2KError {
  if (isH2KError(error)) return context.phase ? error.locate(context.phase, context.stage) : error
  if (isExecaError(error)) return mapExecaError(error, context)
  const documentError = mapDocumentError(error, context)
  if (documentError) return documentError
  const sqliteError = mapSqliteError(error, context)
  if (sqliteError) return sqliteError
  const postgresError = mapPostgresError(error, context)
  if (postgresError) return postgresError
  if (error instanceof Error && error.name === 'AbortError') {
    return new H2KError('H2K_CANCELLED', 'The job was cancelled.', {cause: error, phase: context.phase, stage: context.stage})
  }
  if (error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string') {
    const mapped = mapNodeError(error as NodeJS.ErrnoException, context)
    if (mapped) return mapped
  }
  const message = error instanceof Error ? error.message : String(error)
  return new H2KError('H2K_INTERNAL', message, {cause: error, phase: context.phase, stage: context.stage})
}
