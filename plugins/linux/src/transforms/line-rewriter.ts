import {type SourceLine, dominantEol, joinLines} from './text-lines.js'
import type {TextEdit, TransformResult} from './transform-result.js'

/** How a line that no longer applies on KVM is kept in the guest file: commented out, with its indentation, saying who did it. */
export function commentedOut(body: string, marker = '#'): string {
  const indent = /^\s*/.exec(body)?.[0] ?? ''
  return `${indent}${marker} [hyper2kvm] ${body.slice(indent.length)}`
}

/**
 * Builds a transformed file line by line and the report's edits with it: every line is kept, replaced or
 * preceded by added lines, in order, so each edit's line number is where it ends up in the output. Lines keep
 * their own terminators; added lines take the file's.
 */
export class LineRewriter {
  private readonly out: SourceLine[] = []
  readonly edits: TextEdit[] = []
  readonly warnings: string[] = []
  private readonly eol: string

  constructor(private readonly input: string) {
    this.eol = dominantEol(input)
  }

  keep(line: SourceLine): void {
    this.out.push({...line})
  }

  replace(line: SourceLine, body: string, reason: string): void {
    if (body === line.body) return this.keep(line)
    this.out.push({body, eol: line.eol})
    this.edits.push({after: body, before: line.body, line: this.out.length, reason})
  }

  add(body: string, reason: string): void {
    const last = this.out.at(-1)
    const eol = last && last.eol === '' ? '' : this.eol
    if (last && last.eol === '') last.eol = this.eol
    this.out.push({body, eol})
    this.edits.push({after: body, before: '', line: this.out.length, reason})
  }

  result(): TransformResult {
    const text = this.edits.length === 0 ? this.input : joinLines(this.out)
    return {edits: this.edits, text, warnings: this.warnings}
  }
}
