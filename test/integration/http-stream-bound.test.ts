import assert from 'node:assert/strict'
import {connect} from 'node:net'

import {HttpListener} from '../../src/http/http-listener.js'
import {RouteTable, type StreamSink} from '../../src/http/routes.js'

describe('streaming replies honour back-pressure: a client that stops reading is cut off', function () {
  this.timeout(60_000)

  it('past 1 MiB unsent the stream is ended (the client reconnects with Last-Event-ID), memory does not grow without bound', async () => {
    const CHUNK = 'x'.repeat(64 * 1024)
    const LIMIT = 64 * 1024 * 1024
    let written = 0
    let refused = false
    const done = new Promise<void>((resolve) => {
      const routes = new RouteTable([{
        handle: async () => ({contentType: 'text/event-stream', open: (sink: StreamSink) => {
          const pump = (): void => {
            if (written >= LIMIT) return resolve()
            if (!sink.write(`data: ${CHUNK}\n\n`)) {
              refused = true
              return resolve()
            }
            written += CHUNK.length
            setImmediate(pump)
          }
          pump()
        }, status: 200}),
        method: 'GET',
        name: 'stream',
        path: '/s',
      }])
      void HttpListener.listen({address: '127.0.0.1', log: () => {}, port: 0, routes}).then((listener) => {
        listenerRef = listener
        const socket = connect(listener.address.port, '127.0.0.1', () => socket.write('GET /s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'))
        // Read the headers, then never again.
        socket.once('data', () => socket.pause())
        socket.on('error', () => {})
        sockets.push(socket)
      })
    })
    let listenerRef: HttpListener | undefined
    const sockets: ReturnType<typeof connect>[] = []
    try {
      await done
      assert.ok(refused, `the writer was never told to stop (${written} bytes accepted)`)
      assert.ok(written < 16 * 1024 * 1024, `${written} bytes accepted before the cut (kernel buffers + 1 MiB)`)
      assert.equal(listenerRef!.openStreams, 0)
    } finally {
      for (const s of sockets) s.destroy()
      await listenerRef?.close()
    }
  })
})
