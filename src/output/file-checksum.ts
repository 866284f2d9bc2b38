import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'

/** Streaming hash of a file (hex), reporting bytes read so a renderer can show progress on large files. */
export async function hashFile(path: string, algorithm: 'sha256' | 'md5', signal?: AbortSignal, onBytes?: (bytes: number) => void): Promise<string> {
  const hash = createHash(algorithm)
  let read = 0
  for await (const chunk of createReadStream(path, {highWaterMark: 4 * 1024 * 1024, signal})) {
    hash.update(chunk as Buffer)
    read += (chunk as Buffer).length
    onBytes?.(read)
  }
  return hash.digest('hex')
}

/** Streaming sha256 of an output, for its checksum. */
export function sha256File(path: string, signal: AbortSignal, onBytes?: (bytes: number) => void): Promise<string> {
  return hashFile(path, 'sha256', signal, onBytes)
}
