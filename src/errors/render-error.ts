import type {H2KError} from '@hyper2kvm/plugin-api'

import {escapeControl} from '../render/escape-control.js'

/**
 * JSON text a terminal can take: JSON.stringify leaves DEL, the C1 controls (0x9b is an 8-bit CSI) and the
 * line/paragraph separators raw; written as \uXXXX escapes they parse back to the same value.
 */
export function terminalSafeJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\u007F-\u009F\u2028\u2029]/g, (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`)
}

/**
 * A multi-line message (a job file's problems, the boot check's console tail) keeps its line breaks, each
 * line escaped, and its continuation lines indented: no line of it can pass for an `Error CODE:` line.
 */
function messageLines(message: string): string[] {
  return message.split('\n').map((line, index) => `${index === 0 ? '' : '  '}${escapeControl(line)}`)
}

/** The stack, one escaped line per frame: its head repeats the message, laid out as messageLines. */
function stackLines(error: H2KError): string[] {
  const stack = error.stack ?? ''
  const head = `${error.name}: ${error.message}`
  if (!stack.startsWith(head)) return stack.split('\n').map((line) => `  ${escapeControl(line)}`)
  return [...messageLines(head), ...stack.slice(head.length).split('\n').slice(1).map((line) => escapeControl(line))]
}

/**
 * The error as the terminal shows it: `Error CODE: message`, the phase, `→ suggestion` lines (and the stack
 * when `debug`). Messages and suggestions may carry a guest's or a document's names: every control
 * character in them is made visible (escapeControl), so nothing in an error can drive the terminal; a
 * message's own line breaks stay, its continuation lines indented (messageLines).
 */
export function errorText(error: H2KError, options: {debug: boolean}): string {
  const [first = '', ...rest] = messageLines(error.message)
  const lines = [`Error ${error.code}: ${first}`, ...rest]
  if (error.phase) lines.push(`  phase: ${escapeControl(error.phase)}${error.stage ? ` (${escapeControl(error.stage)})` : ''}`)
  for (const suggestion of error.suggestions) lines.push(`  → ${escapeControl(suggestion)}`)
  if (options.debug && error.stack) lines.push(...stackLines(error))
  return `${lines.join('\n')}\n`
}

/**
 * How every command shows an error: with --json one object `{error, status: "failed"}` on stdout (JSON, its
 * strings escaped as JSON; see terminalSafeJson), else errorText on stderr.
 */
export function renderError(error: H2KError, options: {json: boolean; debug: boolean}): void {
  if (options.json) {
    process.stdout.write(`${terminalSafeJson({error: error.toJSON(), status: 'failed'})}\n`)
    return
  }
  process.stderr.write(errorText(error, options))
}
