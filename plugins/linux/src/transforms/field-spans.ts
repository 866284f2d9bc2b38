/** A whitespace-separated field of a line and where it sits, so it can be replaced without touching the blanks. */
export interface FieldSpan {
  value: string
  start: number
  end: number
}

export function fieldSpans(body: string): FieldSpan[] {
  return [...body.matchAll(/\S+/g)].map((match) => ({value: match[0], start: match.index, end: match.index + match[0].length}))
}

/** The line with one field swapped: the blanks around it (tabs or aligned spaces) stay as they were. */
export function replaceSpan(body: string, span: FieldSpan, value: string): string {
  return body.slice(0, span.start) + value + body.slice(span.end)
}
