import type {H2KError} from '@hyper2kvm/plugin-api'

/**
 * How every command shows an error: with --json one object `{error, status: "failed"}` on stdout, else
 * `Error CODE: message`, the phase, `→ suggestion` lines (and the stack at --log-level debug) on stderr.
 */
export function renderError(error: H2KError, options: {json: boolean; debug: boolean}): void {
  if (options.json) {
    process.stdout.write(`${JSON.stringify({error: error.toJSON(), status: 'failed'}, null, 2)}\n`)
    return
  }
  const lines = [`Error ${error.code}: ${error.message}`]
  if (error.phase) lines.push(`  phase: ${error.phase}${error.stage ? ` (${error.stage})` : ''}`)
  for (const suggestion of error.suggestions) lines.push(`  → ${suggestion}`)
  if (options.debug && error.stack) lines.push(error.stack)
  process.stderr.write(`${lines.join('\n')}\n`)
}
