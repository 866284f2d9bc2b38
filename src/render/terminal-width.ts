/** The part of a stream listr2 reads for its line width (a tty.WriteStream has it; a pipe does not). */
interface Sized {
  columns?: number
}

/**
 * listr2 wraps every task line at `(process.stdout.columns ?? 80)`. A pty created without a size (`script`,
 * some CI runners, `docker exec -t`) reports 0 columns, which passes `??`, so each line was wrapped at ≤ 0 and
 * printed one character per line. Call before creating a Listr: a stdout that reports no width gets stderr's
 * width when stderr has one (we render on stderr), else the conventional 80. A real width is left alone, and
 * the terminal's next resize sets the true width again.
 */
export function fixZeroTerminalWidth(stdout: Sized = process.stdout, stderr: Sized = process.stderr): void {
  if (stdout.columns === undefined || stdout.columns > 0) return
  stdout.columns = stderr.columns !== undefined && stderr.columns > 0 ? stderr.columns : 80
}
