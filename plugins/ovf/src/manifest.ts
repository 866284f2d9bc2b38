import {type DigestAlgorithm, H2KError} from '@hyper2kvm/plugin-api'

/** One line of an OVF manifest: `SHA256(disk1.vmdk)= 3f…`. */
export interface ManifestEntry {
  algorithm: DigestAlgorithm
  name: string
  digest: string
}

const HEX_LENGTH: Readonly<Record<DigestAlgorithm, number>> = {sha1: 40, sha256: 64, sha512: 128}

function mismatch(label: string, message: string, details: Record<string, unknown>): H2KError {
  return new H2KError('H2K_MANIFEST_MISMATCH', `${label}: ${message}`, {details: {manifest: label, ...details}})
}

/** Parse a .mf file. Any line that is not a SHA1/SHA256/SHA512 digest line makes the manifest unusable. */
export function parseManifest(text: string, label: string): ManifestEntry[] {
  const entries: ManifestEntry[] = []
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim() === '') return
    const match = /^\s*(SHA1|SHA256|SHA512)\s*\((.+)\)\s*=\s*([0-9a-fA-F]+)\s*$/.exec(line)
    const algorithm = match?.[1]?.toLowerCase() as DigestAlgorithm | undefined
    if (!match || !algorithm || match[3]?.length !== HEX_LENGTH[algorithm]) {
      throw mismatch(label, `line ${index + 1} is not a digest line hyper2kvm understands ("${line.slice(0, 80)}").`, {line: index + 1})
    }
    entries.push({algorithm, digest: (match[3] ?? '').toLowerCase(), name: match[2] ?? ''})
  })
  if (entries.length === 0) throw mismatch(label, 'the manifest lists no digests.', {})
  return entries
}

/** The algorithms each listed file needs, keyed by the name as the manifest writes it. */
export function algorithmsByName(entries: readonly ManifestEntry[]): Map<string, DigestAlgorithm[]> {
  const wanted = new Map<string, DigestAlgorithm[]>()
  for (const entry of entries) {
    const list = wanted.get(entry.name) ?? []
    if (!list.includes(entry.algorithm)) list.push(entry.algorithm)
    wanted.set(entry.name, list)
  }
  return wanted
}

/**
 * Compare every manifest line with the digests actually computed. `digestsOf` returns undefined for a
 * file that is not there: a listed file that is missing is as much a mismatch as a wrong digest.
 */
export function checkManifest(
  entries: readonly ManifestEntry[],
  digestsOf: (name: string) => Partial<Record<DigestAlgorithm, string>> | undefined,
  label: string,
): void {
  const missing: string[] = []
  const wrong: Array<{name: string; algorithm: DigestAlgorithm; expected: string; actual: string}> = []
  for (const entry of entries) {
    const digests = digestsOf(entry.name)
    if (digests === undefined) {
      missing.push(entry.name)
      continue
    }
    const actual = digests[entry.algorithm]
    if (actual === undefined) throw new H2KError('H2K_INTERNAL', `${label}: no ${entry.algorithm} digest was computed for ${entry.name}.`)
    if (actual !== entry.digest) wrong.push({actual, algorithm: entry.algorithm, expected: entry.digest, name: entry.name})
  }
  if (missing.length > 0) throw mismatch(label, `the manifest lists ${missing.map((name) => `"${name}"`).join(', ')}, which the appliance does not contain.`, {missing})
  if (wrong.length > 0) {
    const first = wrong[0] as (typeof wrong)[number]
    throw mismatch(label, `${wrong.length === 1 ? '' : `${wrong.length} files fail their digests; first: `}${first.algorithm.toUpperCase()}(${first.name}) is ${first.actual}, the manifest says ${first.expected}.`, {
      mismatches: wrong,
    })
  }
}
