import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'

/** Streaming sha256 of a file, reporting bytes read so a renderer can show progress on large outputs. */
export async function sha256File(path: string, signal: AbortSignal, onBytes?: (bytes: number) => void): Promise<string> {
  const hash = createHash('sha256')
  let read = 0
  for await (const chunk of createReadStream(path, {highWaterMark: 4 * 1024 * 1024, signal})) {
    hash.update(chunk as Buffer)
    read += (chunk as Buffer).length
    onBytes?.(read)
  }
  return hash.digest('hex')
}
