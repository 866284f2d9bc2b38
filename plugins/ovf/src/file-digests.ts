import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'

import {type DigestAlgorithm, H2KError} from '@hyper2kvm/plugin-api'

/** Hash a whole file, streaming (bounded memory), with every algorithm asked for in one read. */
export async function fileDigests(
  path: string,
  algorithms: readonly DigestAlgorithm[],
  signal: AbortSignal,
  onBytes?: (bytes: number) => void,
): Promise<Partial<Record<DigestAlgorithm, string>>> {
  const hashes = algorithms.map((algorithm) => [algorithm, createHash(algorithm)] as const)
  try {
    for await (const chunk of createReadStream(path, {highWaterMark: 1024 * 1024, signal})) {
      for (const [, hash] of hashes) hash.update(chunk as Buffer)
      onBytes?.((chunk as Buffer).length)
    }
  } catch (error) {
    if (signal.aborted) throw new H2KError('H2K_CANCELLED', 'Verifying the manifest was cancelled.', {cause: error})
    throw error
  }
  return Object.fromEntries(hashes.map(([algorithm, hash]) => [algorithm, hash.digest('hex')]))
}
