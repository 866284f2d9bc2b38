import {randomBytes} from 'node:crypto'
import {lstat, open, readFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import {join} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {NODE_ID_PATTERN} from '../daemon/config.js'

/** The file in state_dir keeping a generated node id across restarts. */
export const nodeIdPath = (stateDir: string): string => join(stateDir, 'node_id')

/** `<hostname>-<6 random hex>`, the host name reduced to what NODE_ID_PATTERN allows. */
export function generateNodeId(host = hostname()): string {
  const base = host.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 57) || 'node'
  return `${base}-${randomBytes(3).toString('hex')}`
}

/**
 * This daemon's node id: `node_id` from the configuration, else the one kept in `state_dir/node_id`, else a
 * new one written there (0600, never replaced). A kept file that is not a regular file or whose content
 * does not match NODE_ID_PATTERN is refused (H2K_USAGE) without quoting it.
 */
export async function resolveNodeId(stateDir: string, configured: string | undefined): Promise<string> {
  if (configured !== undefined) return configured
  const path = nodeIdPath(stateDir)
  const kept = await readKept(path)
  if (kept !== undefined) return kept
  const id = generateNodeId()
  try {
    // wx: never over a file another start wrote meanwhile.
    const handle = await open(path, 'wx', 0o600)
    try {
      await handle.writeFile(`${id}\n`)
    } finally {
      await handle.close()
    }
    return id
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return (await readKept(path)) ?? id
    throw new H2KError('H2K_USAGE', `Cannot write the node id file ${path}: ${(error as Error).message}`, {cause: error, suggestions: ['state_dir must be writable by the daemon\'s user, or set node_id in the configuration.']})
  }
}

async function readKept(path: string): Promise<string | undefined> {
  let info
  try {
    info = await lstat(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new H2KError('H2K_USAGE', `Cannot read the node id file ${path}: ${(error as Error).message}`, {cause: error})
  }
  const refused = (why: string) =>
    new H2KError('H2K_USAGE', `The node id file ${path} is refused: ${why}.`, {
      details: {path},
      suggestions: ['Remove it (a new id is generated and kept) or set node_id in the configuration.'],
    })
  if (!info.isFile()) throw refused('not a regular file')
  if (info.size > 256) throw refused('too large for a node id')
  const text = (await readFile(path, 'utf8')).trim()
  if (!NODE_ID_PATTERN.test(text)) throw refused('its content is not a node id (1-64 letters, digits, ".", "_" or "-")')
  return text
}
