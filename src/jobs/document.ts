import {open, stat} from 'node:fs/promises'
import {dirname, resolve} from 'node:path'

import {type Document, isMap, isNode, isScalar, LineCounter, parseDocument} from 'yaml'

import {H2KError, readUpTo} from '@hyper2kvm/plugin-api'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {isPlainKey} from '../errors/plain-key.js'
import {isSecretPath, REDACTED} from '../secrets/redact.js'
import {didYouMean} from './did-you-mean.js'
import {excessNesting, MAX_NESTING_DEPTH} from './nesting-depth.js'
import {type ErrorObject, type SchemaName, schemaValidator} from './schemas.js'

/** Job files, manifests and configs are small; anything bigger is refused before it is parsed. */
export const MAX_DOCUMENT_BYTES = 1024 * 1024
/** Alias expansions allowed when turning YAML into values (yaml's guard against "billion laughs"). */
export const MAX_ALIAS_COUNT = 100

export interface Position {
  line: number
  column: number
}

export interface Violation extends Position {
  /** Where in the document, e.g. `jobs[1].output_format`. */
  path: string
  message: string
}

/** A parsed YAML or JSON file that remembers where every value came from. */
export class SourceDocument {
  private constructor(
    readonly file: string,
    readonly value: unknown,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** Read and parse a YAML or JSON file (size-capped, alias-capped); syntax errors carry file:line:column. */
  static async read(path: string): Promise<SourceDocument> {
    const file = resolve(path)
    let size: number
    try {
      const info = await stat(file)
      if (!info.isFile()) throw new H2KError('H2K_JOB_INVALID', `${path} is not a file.`, {details: {file}})
      size = info.size
    } catch (error) {
      throw mapForeignError(error, {path: file})
    }
    if (size > MAX_DOCUMENT_BYTES) {
      throw new H2KError('H2K_JOB_INVALID', `${path} is ${size} bytes; job files, manifests and configs may be at most ${MAX_DOCUMENT_BYTES} bytes. Refusing to parse it.`, {
        details: {file, limit: MAX_DOCUMENT_BYTES, size},
        suggestions: ['Split a huge batch into several job files.'],
      })
    }
    // Read at most the cap (+1), even if the file grew after stat().
    const handle = await open(file, 'r')
    let text: string
    try {
      const bytes = await readUpTo(handle, 0, MAX_DOCUMENT_BYTES + 1)
      if (bytes.length > MAX_DOCUMENT_BYTES) throw new H2KError('H2K_JOB_INVALID', `${path} grew beyond ${MAX_DOCUMENT_BYTES} bytes while being read.`, {details: {file}})
      text = bytes.toString('utf8')
    } finally {
      await handle.close()
    }
    return SourceDocument.parse(text, file)
  }

  /** Parse YAML or JSON text; a document nesting deeper than MAX_NESTING_DEPTH is refused before any tree is built. */
  static parse(text: string, file: string): SourceDocument {
    const deep = excessNesting(text)
    if (deep) {
      // The message names the file and line only: the document may be hostile, its text is not repeated.
      throw new H2KError('H2K_JOB_INVALID', `${file}:${deep.line}: nests deeper than ${MAX_NESTING_DEPTH} levels; job files, manifests and configs never need that. Refusing to parse it.`, {
        details: {file, line: deep.line, maxDepth: MAX_NESTING_DEPTH},
        suggestions: ['Check where the file came from: a genuine job file, manifest or configuration is a few levels deep.'],
      })
    }
    const lines = new LineCounter()
    const doc = parseDocument(text, {lineCounter: lines, prettyErrors: true, uniqueKeys: true})
    if (doc.errors.length > 0) throw mapForeignError(doc.errors[0], {path: file})
    let value: unknown
    try {
      value = doc.toJS({maxAliasCount: MAX_ALIAS_COUNT})
    } catch (error) {
      throw mapForeignError(error, {path: file})
    }
    return new SourceDocument(file, value ?? {}, doc, lines)
  }

  get dir(): string {
    return dirname(this.file)
  }

  /** Line and column of the value at `path` (or of its key, with `key: true`); the nearest known ancestor otherwise. */
  locate(path: ReadonlyArray<string | number>, options: {key?: boolean} = {}): Position {
    for (let n = path.length; n >= 0; n--) {
      const prefix = path.slice(0, n)
      let offset: number | undefined
      if (options.key && n === path.length && n > 0) {
        const parent = prefix.length > 1 ? this.doc.getIn(prefix.slice(0, -1), true) : this.doc.contents
        const pair = isMap(parent) ? parent.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === prefix.at(-1)) : undefined
        if (pair && isNode(pair.key)) offset = pair.key.range?.[0]
      } else {
        const node = n === 0 ? this.doc.contents : this.doc.getIn(prefix, true)
        if (isNode(node)) offset = node.range?.[0]
      }
      if (offset !== undefined) {
        const {col, line} = this.lines.linePos(offset)
        return {column: col, line}
      }
    }
    return {column: 1, line: 1}
  }

  /** Validate against a shipped schema; every problem becomes one `file:line:column: path: message` line. */
  validate(schema: SchemaName, what: string): void {
    const validate = schemaValidator(schema)
    if (validate(this.value)) return
    const seen = new Set<string>()
    const violations: Violation[] = []
    for (const error of validate.errors ?? []) {
      // Said by the error it wraps (the key's own, with the key's position): one line per problem.
      if (error.keyword === 'propertyNames') continue
      // `if` only says which branch failed; the branch's own errors say what is wrong (a window: string or mapping).
      if (error.keyword === 'if') continue
      const violation = this.describe(error)
      const key = `${violation.line}:${violation.column}:${violation.message}`
      if (!seen.has(key)) {
        seen.add(key)
        violations.push(violation)
      }
    }
    throw this.invalid(violations, what)
  }

  /** An H2K_JOB_INVALID listing the violations, one per line. */
  invalid(violations: Violation[], what: string): H2KError {
    const lines = violations.map((v) => `${this.file}:${v.line}:${v.column}: ${v.path ? `${v.path}: ` : ''}${v.message}`)
    return new H2KError('H2K_JOB_INVALID', `${this.file} is not a valid ${what}:\n${lines.join('\n')}`, {
      details: {file: this.file, violations},
    })
  }

  /** A violation at `path` (with the position of its key when `key`). */
  violation(path: ReadonlyArray<string | number>, message: string, options: {key?: boolean} = {}): Violation {
    return {...this.locate(path, options), message, path: formatPath(path)}
  }

  private describe(error: ErrorObject): Violation {
    const path = parsePointer(error.instancePath)
    // A secret (a numeric password YAML read as a number, a too-short token, a URL with its credential) is never quoted.
    // Stage options may be tokens and passwords too (a plugin's): their values are never quoted either.
    const quiet = isSecretPath(path) || path.includes('stage_options')
    const got = (value: unknown): string => (value === undefined ? '' : quiet ? ` (got ${REDACTED})` : ` (got ${JSON.stringify(value)})`)
    const {propertyName} = error as ErrorObject & {propertyName?: string}
    if (propertyName !== undefined && path.at(-1) === 'stage_options') {
      const hint = 'expected kind:name, e.g. fixer:fstab (`hyper2kvm plugins` lists them)'
      const what = isPlainKey(propertyName) ? `"${propertyName}"` : `a key of ${propertyName.length} characters (not shown)`
      return this.violation([...path, propertyName], `${what} is not a stage id: ${hint}`, {key: true})
    }
    switch (error.keyword) {
      case 'additionalProperties': {
        const key = String((error.params as {additionalProperty: string}).additionalProperty)
        const known = Object.keys((error.parentSchema as {properties?: object} | undefined)?.properties ?? {}).filter((k) => k !== '$schema')
        const near = didYouMean(key, known)
        const hint = near ? `did you mean "${near}"?` : `expected one of: ${known.join(', ')}`
        if (!isPlainKey(key)) return this.violation([...path, key], `an unknown key of ${key.length} characters (not shown); expected one of: ${known.join(', ')}`, {key: true})
        return this.violation([...path, key], `unknown key "${key}"; ${hint}`, {key: true})
      }
      case 'required': {
        const key = String((error.params as {missingProperty: string}).missingProperty)
        return this.violation(path, `missing required key "${key}"`)
      }
      case 'enum': {
        const allowed = (error.params as {allowedValues: unknown[]}).allowedValues.map(String).join(', ')
        return this.violation(path, `expected one of ${allowed}${got(error.data)}`)
      }
      case 'const':
        return this.violation(path, `expected ${JSON.stringify((error.params as {allowedValue: unknown}).allowedValue)}${got(error.data)}`)
      case 'type':
        return this.violation(path, `expected ${article(String((error.params as {type: string}).type))}${got(error.data)}`)
      default:
        return this.violation(path, `${error.message ?? 'is invalid'}${got(error.data)}`)
    }
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`
}

/** `/jobs/1/output_format` → ['jobs', 1, 'output_format']. */
function parsePointer(pointer: string): Array<string | number> {
  if (!pointer) return []
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part))
}

/** ['jobs', 1, 'output_format'] → `jobs[1].output_format`. */
export function formatPath(path: ReadonlyArray<string | number>): string {
  return path.reduce<string>((text, raw) => {
    const part = typeof raw === 'number' || isPlainKey(raw) ? raw : '…'
    return typeof part === 'number' ? `${text}[${part}]` : text ? `${text}.${part}` : part
  }, '')
}
