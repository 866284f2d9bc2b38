import {H2KError} from '@hyper2kvm/plugin-api'
import type {DaemonLogFn} from '../daemon/daemon-pieces.js'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {type HttpReply, errorReply} from '../http/routes.js'

/**
 * The one place error codes become HTTP statuses: 400 the request or document is invalid, 403 it names
 * something the daemon will not touch (an input outside allowed_input_dirs), 404 no such job or schedule (H2K_NOT_FOUND), 409 the job
 * or schedule is in the wrong state for the request, 500 anything else (the daemon's own failure).
 */
const STATUS: Record<string, number> = {
  H2K_INPUT_NOT_FOUND: 400,
  H2K_JOB_INVALID: 400,
  H2K_JOB_STATE: 409,
  H2K_NOT_FOUND: 404,
  H2K_STAGE_OPTIONS_INVALID: 400,
  H2K_UNSAFE_BACKING: 403,
  H2K_UNSAFE_PATH: 403,
  H2K_USAGE: 400,
}

export function httpStatusOf(code: string): number {
  return STATUS[code] ?? 500
}

/**
 * An error as the API answers it. A client error keeps its message (it is about the caller's own request,
 * and messages never quote refused content) and, for an invalid document, its violations (path and
 * message, never the refused value); a server error is logged and answered without detail.
 */
export function apiErrorReply(error: unknown, requestId: string, log: DaemonLogFn, route: string): HttpReply {
  const h2k = error instanceof H2KError ? error : mapForeignError(error)
  const status = httpStatusOf(h2k.code)
  if (status >= 500) {
    log('error', 'api:failed', {code: h2k.code, request_id: requestId, route}, h2k.message)
    return errorReply(status, 'Internal error; the daemon log has the details.', requestId, {code: h2k.code})
  }
  const violations = h2k.code === 'H2K_JOB_INVALID' ? violationsOf(h2k.details) : undefined
  // An invalid document: each problem by its path, without the value it refused (the job-file messages quote it: `(got "…")`).
  const message = violations && violations.length > 0 ? cut(`The request body is not a valid job document: ${violations.map((v) => `${v.path || '(document)'}: ${v.message}`).join('; ')}`) : h2k.message
  log('info', 'api:refused', {code: h2k.code, request_id: requestId, route, status}, message)
  return errorReply(status, message, requestId, {code: h2k.code, ...(violations ? {details: {violations}} : {})})
}

/** Longest error message answered. */
const MESSAGE_MAX = 4000

function cut(text: string): string {
  return text.length <= MESSAGE_MAX ? text : `${text.slice(0, MESSAGE_MAX)}…`
}

/** A violation's message without the refused value it may quote. */
function withoutValue(message: string): string {
  return message.replace(/\s*\(got [^]*\)\s*$/, '')
}

/** The `{path, message}` pairs of a schema refusal (nothing else of its details: they may hold values). */
function violationsOf(details: unknown): Array<{path: string; message: string}> | undefined {
  const list = (details as {violations?: unknown} | undefined)?.violations
  if (!Array.isArray(list)) return undefined
  return list.flatMap((v: unknown) => {
    const {message, path} = (v ?? {}) as {path?: unknown; message?: unknown}
    return typeof path === 'string' && typeof message === 'string' ? [{message: cut(withoutValue(message)), path: path.slice(0, 300)}] : []
  })
}

/** A query parameter the request got wrong: H2K_USAGE (400), naming the parameter, never its value. */
export function badParameter(name: string, expected: string): H2KError {
  return new H2KError('H2K_USAGE', `Query parameter ${name} must be ${expected}.`)
}
