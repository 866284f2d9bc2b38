/** One server-sent event as received. */
export interface ServerEvent {
  id?: string
  event: string
  data: string
}

/** The events of a text/event-stream body (comments and retry lines skipped), until it ends. */
export async function* readServerEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerEvent> {
  const decoder = new TextDecoder()
  let buffer = ''
  let current: {id?: string; event?: string; data: string[]} = {data: []}
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, {stream: true})
    let newline: number
    while ((newline = buffer.search(/\r\n|\n|\r/)) >= 0) {
      const line = buffer.slice(0, newline)
      buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1))
      if (line === '') {
        if (current.data.length > 0) yield {data: current.data.join('\n'), event: current.event ?? 'message', ...(current.id === undefined ? {} : {id: current.id})}
        current = {data: []}
        continue
      }
      if (line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'data') current.data.push(value)
      else if (field === 'event') current.event = value
      else if (field === 'id') current.id = value
    }
  }
}
