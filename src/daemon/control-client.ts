import {existsSync} from 'node:fs'
import {connect} from 'node:net'

import {H2KError} from '../errors/h2k-error.js'
import {controlSocketPath} from './daemon.js'

/** Send one request to the daemon's control socket and wait for its one-line JSON reply. */
export function controlRequest(outputDir: string, command: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  const path = controlSocketPath(outputDir)
  if (!existsSync(path)) {
    return Promise.reject(
      new H2KError('H2K_DAEMON_NOT_RUNNING', `Daemon not running: socket not found at ${path} — wrong --output-dir?`, {
        details: {socket: path},
        suggestions: ["Pass the daemon's output_dir with --output-dir (or its --config); start it with `hyper2kvm daemon --config FILE`."],
      }),
    )
  }
  return new Promise((resolve, reject) => {
    const socket = connect(path)
    let buffer = ''
    let settled = false
    const finish = (error: H2KError | undefined, value?: Record<string, unknown>): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      if (error) reject(error)
      else resolve(value!)
    }
    const timer = setTimeout(
      () => finish(new H2KError('H2K_DAEMON_TIMEOUT', `The daemon did not answer "${command}" on ${path} within ${timeoutMs / 1000} s.`, {details: {socket: path}})),
      timeoutMs,
    )
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write(`${JSON.stringify({command})}\n`))
    socket.on('data', (chunk: string) => {
      buffer += chunk
      const end = buffer.indexOf('\n')
      if (end === -1) return
      try {
        finish(undefined, JSON.parse(buffer.slice(0, end)) as Record<string, unknown>)
      } catch (error) {
        finish(new H2KError('H2K_INTERNAL', `Unreadable reply from the daemon: ${(error as Error).message}`))
      }
    })
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const stale = error.code === 'ECONNREFUSED' || error.code === 'ENOENT'
      finish(
        stale
          ? new H2KError('H2K_DAEMON_NOT_RUNNING', `Daemon not running: nothing listens on ${path} (a stale socket from a daemon that did not stop cleanly).`, {
              details: {socket: path},
              suggestions: ['Start the daemon again; it removes the stale socket.'],
            })
          : new H2KError('H2K_DAEMON_NOT_RUNNING', `Cannot reach the daemon on ${path}: ${error.message}`, {cause: error, details: {socket: path}}),
      )
    })
    socket.on('close', () => finish(new H2KError('H2K_DAEMON_NOT_RUNNING', `The daemon closed ${path} without answering.`)))
  })
}
