import {REDACTED, redactConfig} from '../secrets/redact.js'
import {CONFIG_KEYS, type ConfigValue} from './config.js'
import {SourceDocument} from './document.js'

/** Keys shown elsewhere (the conversion defaults) or meaningless to show. */
const SHOWN_AS_SETTINGS = new Set<string>([...CONFIG_KEYS, 'out_format', '$schema'])

/**
 * Every other key of a configuration file (the daemon's: directories, retry_policy, notifications,
 * metrics, vsphere …) as dotted keys with the file as their source, secrets and stage option values replaced by `[REDACTED]`.
 */
export async function configFileKeys(file: string): Promise<Record<string, ConfigValue>> {
  const doc = await SourceDocument.read(file)
  const values = redactConfig(doc.value) as Record<string, unknown>
  const keys: Record<string, ConfigValue> = {}
  // Stage options down to their keys (stage id, option), never their values: the host cannot tell which of
  // a plugin's options is a credential (errors never repeat them either), so every value is [REDACTED].
  const walk = (value: unknown, path: string, depth: number | undefined): void => {
    if (depth === 0) {
      keys[path] = {source: file, value: REDACTED}
    } else if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
      for (const [key, child] of Object.entries(value as Record<string, unknown>)) walk(child, `${path}.${key}`, depth === undefined ? undefined : depth - 1)
    } else {
      keys[path] = {source: file, value}
    }
  }
  for (const [key, value] of Object.entries(values ?? {})) if (!SHOWN_AS_SETTINGS.has(key)) walk(value, key, key === 'stage_options' ? 2 : undefined)
  return keys
}
