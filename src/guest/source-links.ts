import {symlink} from 'node:fs/promises'
import {join} from 'node:path'

import type {BlockdevSpec} from '@hyper2kvm/plugin-api'

/**
 * A copy of `spec` whose host files are reached through short symlinks in `dir`. A qcow2 overlay records
 * its backing as a `json:` string in a header field of at most 1023 bytes; long input paths would not fit.
 */
export async function withShortPaths(spec: BlockdevSpec, dir: string, prefix: string): Promise<BlockdevSpec> {
  let count = 0
  const visit = async (node: unknown): Promise<unknown> => {
    if (Array.isArray(node)) return Promise.all(node.map(visit))
    if (typeof node !== 'object' || node === null) return node
    const record = node as Record<string, unknown>
    const copy: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(record)) copy[key] = await visit(value)
    if (record.driver === 'file' && typeof record.filename === 'string') {
      const link = join(dir, `${prefix}${count++}`)
      await symlink(record.filename, link)
      copy.filename = link
    }
    return copy
  }
  return (await visit(spec)) as BlockdevSpec
}
