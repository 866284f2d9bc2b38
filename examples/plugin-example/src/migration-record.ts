/** Where the record lives in the guest. */
export const RECORD_PATH = '/etc/hyper2kvm-migrated'

/** The first line of every record this plugin writes: how a later run knows the file is its own. */
export const RECORD_HEADER = '# hyper2kvm migration record (hyper2kvm-plugin-migration-marker)'

/** A record is a few hundred bytes. A larger file at that path is not ours, and is never read. */
export const MAX_RECORD_BYTES = 4096

export const NOTE_MAX_LENGTH = 200

export interface MigrationFacts {
  /** The base name of the input the user converted (never its full path: that is the host's business). */
  source: string
  sourceFormat: string
  migratedAt: Date
  hostVersion?: string
  note?: string
}

// Control characters (a newline among them) would let a value add lines of its own to the record.
const CONTROL = /[\u0000-\u001f\u007f]/g

/** One line of text: control characters become spaces. */
export function oneLine(value: string): string {
  return value.replace(CONTROL, ' ')
}

/** The record: `key=value` lines under a comment header, one fact per line. */
export function recordText(facts: MigrationFacts): string {
  const lines = [
    RECORD_HEADER,
    '# This machine was converted to KVM by hyper2kvm. A later conversion replaces this file.',
    `source=${oneLine(facts.source)}`,
    `source_format=${oneLine(facts.sourceFormat)}`,
    `migrated_at=${facts.migratedAt.toISOString()}`,
  ]
  if (facts.hostVersion) lines.push(`hyper2kvm_version=${oneLine(facts.hostVersion)}`)
  if (facts.note) lines.push(`note=${oneLine(facts.note)}`)
  return `${lines.join('\n')}\n`
}

/** Whether a file's text is a record this plugin wrote (and may therefore replace). */
export function isOwnRecord(text: string): boolean {
  return text.startsWith(`${RECORD_HEADER}\n`)
}
