import {connect} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'

/** One `status` request on a daemon's control socket; resolves with the milliseconds until its reply line. */
export function statusLatency(socketPath: string, timeoutMs = 30_000): Promise<number> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath)
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no reply on ${socketPath} within ${timeoutMs} ms`))
    }, timeoutMs)
    let buffer = ''
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write('{"command":"status"}\n'))
    socket.on('data', (chunk: string) => {
      buffer += chunk
      if (!buffer.includes('\n')) return
      clearTimeout(timer)
      socket.destroy()
      resolve(performance.now() - started)
    })
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })
}

/** Probe `status` every `everyMs` until `stop()`; returns the worst latency seen. */
export function probeLatency(socketPath: string, everyMs = 100): {stop: () => Promise<{worstMs: number; probes: number}>} {
  let running = true
  let worstMs = 0
  let probes = 0
  const loop = (async () => {
    while (running) {
      worstMs = Math.max(worstMs, await statusLatency(socketPath))
      probes++
      await sleep(everyMs)
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
      return {probes, worstMs}
    },
  }
}
