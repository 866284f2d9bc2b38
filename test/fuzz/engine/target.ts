/**
 * A fuzz target: one parser of hostile bytes, fed one input at a time. `run` resolves when the parser
 * accepted the input and throws whatever it throws; `expected` says which of those throws are the
 * parser's documented refusal (an H2KError, or the parser's own error type). Anything else is a finding.
 */
export interface FuzzTarget {
  /** Parse `data`. `scratch` is a directory of this worker's own, for parsers that read files. */
  run(data: Buffer, scratch: string): Promise<void> | void
  /** The stable code of a documented refusal, or undefined when `error` is not one (a finding). */
  refusalCode(error: unknown): string | undefined
  /** Tokens worth splicing into inputs (keywords, magic numbers): what a compare-tracing fuzzer would learn. */
  dictionary?: ReadonlyArray<string | Buffer>
  /** Packages under node_modules whose code also guides the fuzzer (the third-party parser we wrap, e.g. 'yaml'). */
  alsoCover?: readonly string[]
  /** Largest input the mutator grows to (default 64 KiB). */
  maxLength?: number
}

/** How one input ended: accepted, refused with a documented code, or a finding (crash). */
export type Outcome = {kind: 'accepted'} | {kind: 'refused'; code: string} | {kind: 'crash'; error: string}

export async function runOne(target: FuzzTarget, data: Buffer, scratch: string): Promise<Outcome> {
  try {
    await target.run(data, scratch)
    return {kind: 'accepted'}
  } catch (error) {
    const code = target.refusalCode(error)
    if (code !== undefined) return {kind: 'refused', code}
    return {kind: 'crash', error: error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : `non-Error thrown: ${String(error)}`}
  }
}
