/** One changed line of a guest file, for the job report (line numbers are 1-based; `before` is '' for an added line). */
export interface TextEdit {
  line: number
  before: string
  after: string
  reason: string
}

/**
 * What every text transform returns. `text` is the input itself (the same string) when nothing changed, so a
 * fixer can skip the write with `result.text === input` or `edits.length === 0`.
 */
export interface TransformResult {
  text: string
  edits: TextEdit[]
  warnings: string[]
}
