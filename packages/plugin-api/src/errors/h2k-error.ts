import {ERROR_CATALOG, type ErrorCode} from './catalog.js'
import {snakeCaseKeys} from './json-keys.js'

export type Phase = 'setup' | 'load' | 'inspect' | 'fix' | 'convert' | 'verify' | 'report'

export interface H2KErrorOptions {
  suggestions?: readonly string[]
  phase?: Phase
  stage?: string
  cause?: unknown
  /** Machine-readable facts (paths, sizes, offending names); shown in --json output and reports. */
  details?: Record<string, unknown>
}

/** The one error type of hyper2kvm: a stable code, an exit code, and suggestions a user can act on. */
export class H2KError extends Error {
  override readonly name = 'H2KError'
  readonly code: ErrorCode
  readonly exitCode: number
  readonly suggestions: readonly string[]
  phase: Phase | undefined
  stage: string | undefined
  readonly details: Record<string, unknown>

  constructor(code: ErrorCode, message: string, options: H2KErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    const entry = ERROR_CATALOG[code]
    this.code = code
    this.exitCode = entry.exitCode
    this.suggestions = options.suggestions ?? entry.suggestions
    this.phase = options.phase
    this.stage = options.stage
    this.details = options.details ?? {}
  }

  get permanent(): boolean {
    return ERROR_CATALOG[this.code].permanent
  }

  /** Attach where the error happened without losing an earlier, more precise location. */
  locate(phase: Phase, stage?: string): this {
    this.phase ??= phase
    this.stage ??= stage
    return this
  }

  /** The error as --json, reports and the daemon's files show it: snake_case keys, its details' included. */
  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      exit_code: this.exitCode,
      suggestions: this.suggestions,
      ...(this.phase ? {phase: this.phase} : {}),
      ...(this.stage ? {stage: this.stage} : {}),
      ...(Object.keys(this.details).length > 0 ? {details: snakeCaseKeys(this.details)} : {}),
    }
  }
}

export function isH2KError(error: unknown): error is H2KError {
  return error instanceof H2KError || (error instanceof Error && error.name === 'H2KError' && 'code' in error)
}
