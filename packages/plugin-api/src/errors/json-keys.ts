/**
 * The one JSON key convention of everything hyper2kvm defines: snake_case (the seeds' files use it, and so
 * do our job files, manifests and daemon configs). TypeScript code names fields in camelCase; objects that
 * leave the process as JSON and carry such names (a job result with the plugins' inspection and VM
 * metadata, an error's details) pass through snakeCaseKeys once, where they are serialized.
 */

/** A camelCase identifier (`durationMs`, `memoryMiB`); anything else (paths, file names, header names, codes) is data. */
const CAMEL_IDENTIFIER = /^[a-z][a-z0-9]*(?:[A-Z][A-Za-z0-9]*)+$/

/** `durationMs` → `duration_ms`, `memoryMiB` → `memory_mib`, `sha256` → `sha256`; a key that is not a camelCase identifier is kept. */
export function snakeCaseKey(key: string): string {
  if (!CAMEL_IDENTIFIER.test(key)) return key
  return key
    .replace(/([KMGTP])iB(?=[A-Z]|$)/g, '$1ib') // a binary unit is one word: memoryMiB → memory_mib
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

/**
 * Fields whose value is data keyed by names we do not define: stage options are keyed by stage id, then by the
 * option names a plugin's schema chose (`maxSize` stays `maxSize`, or the stage would not recognise it).
 */
const DATA_FIELDS = new Set(['stage_options', 'stage_option_sources'])

/**
 * A copy of a JSON-bound value with every camelCase key of its plain objects in snake_case, at any depth,
 * except inside DATA_FIELDS. Values are never changed; objects with their own toJSON (Date, H2KError) are left
 * to it. Idempotent: a value already in snake_case (a stored result read back) comes out the same.
 */
export function snakeCaseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => snakeCaseKeys(item))
  if (!isPlainObject(value)) return value
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => {
      const name = snakeCaseKey(key)
      return [name, DATA_FIELDS.has(name) ? item : snakeCaseKeys(item)]
    }),
  )
}
