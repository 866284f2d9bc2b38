import type {IncomingMessage} from 'node:http'

/** A body the listener refused, with the status and a message that never quotes what was sent. */
export interface BodyRefusal {
  status: 400 | 413 | 415
  message: string
}

/**
 * Read a JSON request body: `application/json` only (415), at most `maxBytes` counted as the bytes arrive
 * (a Content-Length above it is refused before reading; a chunked body is cut off once it passes it: 413),
 * then parsed (400 on invalid JSON, without quoting it). An empty body is `undefined`.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<{value: unknown} | BodyRefusal> {
  const declared = req.headers['content-length']
  const chunked = req.headers['transfer-encoding'] !== undefined
  if (!chunked && (declared === undefined || declared === '0')) return {value: undefined}
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (type !== 'application/json') return {message: 'The request body must be JSON (Content-Type: application/json).', status: 415}
  if (declared !== undefined && Number(declared) > maxBytes) return {message: `The request body is larger than ${maxBytes} bytes.`, status: 413}
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > maxBytes) return {message: `The request body is larger than ${maxBytes} bytes.`, status: 413}
      chunks.push(chunk)
    }
  } catch {
    return {message: 'The request body could not be read (connection aborted).', status: 400}
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') return {value: undefined}
  try {
    return {value: JSON.parse(text) as unknown}
  } catch {
    return {message: 'The request body is not valid JSON.', status: 400}
  }
}
