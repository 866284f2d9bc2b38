/**
 * Secrets as a configuration file holds them: `<section>.<key>` (plain) and `<section>.<key>_file`.
 * Callers that load a configuration turn each known secret into a SecretRequest with this.
 */
import {SourceDocument} from '../jobs/document.js'
import type {SecretRequest} from './resolve-secret.js'
import {secretConfigPath} from './secret-names.js'

/** The request for `name` from a parsed configuration object (keys absent: only keychain, credential and env can provide it). */
export function secretRequestFromConfig(config: unknown, name: string, where: {configFile?: string; baseDir?: string} = {}): SecretRequest {
  const {key, section} = secretConfigPath(name)
  let node: unknown = config
  for (const part of section) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined
  const holder = node !== null && typeof node === 'object' ? (node as Record<string, unknown>) : {}
  const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined)
  return {baseDir: where.baseDir, configFile: where.configFile, file: text(holder[`${key}_file`]), name, value: text(holder[key])}
}

/** The requests for these names from a configuration file (validated by loadConfig first), or bare ones without a file. */
export async function secretRequestsFromFile(file: string | undefined, names: readonly string[]): Promise<SecretRequest[]> {
  if (file === undefined) return names.map((name) => ({name}))
  const doc = await SourceDocument.read(file)
  return names.map((name) => secretRequestFromConfig(doc.value, name, {baseDir: doc.dir, configFile: file}))
}
