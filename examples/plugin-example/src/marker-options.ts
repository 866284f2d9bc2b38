import {NOTE_MAX_LENGTH} from './migration-record.js'

export interface MarkerOptions {
  note?: string
}

/**
 * The JSON Schema of this stage's options. The host validates what the user set against it before the
 * job starts (`--stage-option fixer:migration-marker.note=…`, `stage_options:` in job files and configs).
 */
export const OPTIONS_SCHEMA = {
  additionalProperties: false,
  properties: {
    note: {
      description: 'One line of free text for the record, e.g. the change ticket of the migration.',
      maxLength: NOTE_MAX_LENGTH,
      pattern: '^[^\\u0000-\\u001f\\u007f]*$',
      type: 'string',
    },
  },
  type: 'object',
} as const

/**
 * The options as the stage received them, checked by the same rules as the schema: a host that validates
 * has refused bad values already, so this guards only against a host (or test) that does not. Returns the
 * options, or what is wrong with them.
 */
export function parseOptions(raw: unknown): {options: MarkerOptions} | {problem: string} {
  if (raw === undefined || raw === null) return {options: {}}
  if (typeof raw !== 'object' || Array.isArray(raw)) return {problem: 'options must be an object'}
  const {note, ...unknown} = raw as Record<string, unknown>
  const extra = Object.keys(unknown)
  if (extra.length > 0) return {problem: `unknown option ${extra.map((key) => JSON.stringify(key)).join(', ')} (known: note)`}
  if (note === undefined) return {options: {}}
  if (typeof note !== 'string') return {problem: 'note must be a string'}
  if (note.length > NOTE_MAX_LENGTH) return {problem: `note is longer than ${NOTE_MAX_LENGTH} characters`}
  if (/[\u0000-\u001f\u007f]/.test(note)) return {problem: 'note must be one line without control characters'}
  return {options: {note}}
}
