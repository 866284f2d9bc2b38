import {H2KError, STAGE_KINDS} from '@hyper2kvm/plugin-api'

/**
 * Stage options from one place (the command line, a job file, a configuration): values by stage id and key,
 * and where each was given (`<stage id>.<key>` and `<stage id>` → `file:line:column` or `--stage-option …`), so
 * that a value the stage's schema refuses is reported where the user wrote it.
 */
export interface StageOptionLayer {
  values: Record<string, Record<string, unknown>>
  sources: Record<string, string>
}

/** `kind:name` as the registry builds stage ids. */
export const STAGE_ID = new RegExp(`^(${STAGE_KINDS.join('|')}):[a-z0-9][a-z0-9._-]{0,63}$`)
/** An option key on the command line (files may use any key their stage's schema accepts). */
const FLAG_KEY = /^[A-Za-z_][\w-]{0,63}$/

/**
 * `--stage-option <kind:name>.<key>=<value>` (repeatable). The key is what follows the last dot before the
 * first `=` (stage names may contain dots); the value is JSON when it parses as JSON, else the text itself.
 */
export function parseStageOptionFlags(texts: readonly string[]): StageOptionLayer {
  const layer: StageOptionLayer = {sources: {}, values: {}}
  for (const text of texts) {
    const eq = text.indexOf('=')
    const target = eq < 0 ? text : text.slice(0, eq)
    const dot = target.lastIndexOf('.')
    const id = target.slice(0, Math.max(dot, 0))
    const key = target.slice(dot + 1)
    if (eq < 0 || dot < 0 || !STAGE_ID.test(id) || !FLAG_KEY.test(key)) {
      throw new H2KError('H2K_USAGE', `--stage-option takes <kind:name>.<key>=<value>, e.g. fixer:migrated-marker.note=moved; got "${target.slice(0, 80)}${eq < 0 ? '' : '=…'}".`, {
        suggestions: ['`hyper2kvm plugins` lists the stage ids (kind:name); a structured value is written as JSON: --stage-option \'fixer:x.tags=["a","b"]\'.'],
      })
    }
    const raw = text.slice(eq + 1)
    let value: unknown
    try {
      value = JSON.parse(raw)
    } catch {
      value = raw
    }
    // An own property whatever the key: `__proto__` assigned would set the object's prototype (the value then
    // vanished instead of being judged by the stage's schema like any other key).
    Object.defineProperty((layer.values[id] ??= {}), key, {configurable: true, enumerable: true, value, writable: true})
    layer.sources[`${id}.${key}`] = `--stage-option ${id}.${key}`
    layer.sources[id] ??= `--stage-option ${id}.${key}`
  }
  return layer
}

function isLayer(value: unknown): value is StageOptionLayer {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && 'values' in value && 'sources' in value
}

/** The `stage-option` flag value in either shape: the strings oclif parsed, or a layer a job file or config made. */
export function stageOptionLayerOf(value: unknown): StageOptionLayer | undefined {
  if (value === undefined) return undefined
  if (isLayer(value)) return value
  if (Array.isArray(value)) return parseStageOptionFlags(value.map(String))
  if (typeof value === 'string') return parseStageOptionFlags([value])
  throw new H2KError('H2K_INTERNAL', 'stage options in an unexpected shape')
}

/** Later layers win, key by key: a job file's `stage_options` keeps the configuration's other keys of that stage. */
export function mergeStageOptionLayers(...layers: ReadonlyArray<StageOptionLayer | undefined>): StageOptionLayer | undefined {
  const present = layers.filter((l): l is StageOptionLayer => l !== undefined)
  if (present.length === 0) return undefined
  const merged: StageOptionLayer = {sources: {}, values: {}}
  for (const layer of present) {
    for (const [id, options] of Object.entries(layer.values)) merged.values[id] = {...merged.values[id], ...options}
    Object.assign(merged.sources, layer.sources)
  }
  return merged
}

/** Something that can say where a path of a parsed file is (SourceDocument). */
interface Locator {
  readonly file: string
  locate(path: ReadonlyArray<string | number>, options?: {key?: boolean}): {line: number; column: number}
}

/** `stage_options:` of a job file, manifest or configuration (already schema-checked: ids → objects) at `at`. */
export function documentStageOptions(doc: Locator, at: ReadonlyArray<string | number>, value: unknown): StageOptionLayer | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const layer: StageOptionLayer = {sources: {}, values: {}}
  const where = (path: ReadonlyArray<string | number>): string => {
    const {column, line} = doc.locate(path, {key: true})
    return `${doc.file}:${line}:${column}`
  }
  for (const [id, options] of Object.entries(value as Record<string, unknown>)) {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) continue
    layer.values[id] = {...(options as Record<string, unknown>)}
    layer.sources[id] = where([...at, id])
    for (const key of Object.keys(options)) layer.sources[`${id}.${key}`] = where([...at, id, key])
  }
  return layer
}
