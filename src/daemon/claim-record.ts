import {listClaimFiles, readClaim, type ClaimRecord} from './claim-files.js'

/**
 * The record of the claim in `dir` (a path through the held bookkeeping descriptors), or one made up from
 * the directory for claims made before records existed; undefined for an empty directory.
 */
export async function readClaimRecord(dir: string, id: string): Promise<ClaimRecord | undefined> {
  const record = await readClaim(dir)
  if (record) return record
  const files = await listClaimFiles(dir).catch(() => [] as string[])
  if (files.length === 0) return undefined
  return {claimed_at: new Date().toISOString(), files, id, kind: 'disk', main: files[0]!}
}
