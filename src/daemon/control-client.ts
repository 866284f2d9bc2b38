import {lstatSync} from 'node:fs'
import {connect} from 'node:net'

import {H2KError} from '@hyper2kvm/plugin-api'
import {controlSocketIn} from './state-paths.js'

/** Permission errors: the socket (0600) or its directory (0700) belongs to the daemon's user. */
const DENIED = new Set(['EACCES', 'EPERM'])

function accessDenied(path: string, cause?: unknown): H2KError {
  return new H2KError('H2K_DAEMON_ACCESS_DENIED', `Permission denied on the daemon's control socket ${path}: it is for the daemon's user (and root) only.`, {
    cause,
    details: {socket: path},
  })
}

/** Whether the socket's path exists, telling "not there" from "not yours to see". */
function socketPresence(path: string): 'present' | 'absent' | 'denied' {
  try {
    lstatSync(path)
    return 'present'
  } catch (error) {
    return DENIED.has((error as NodeJS.ErrnoException).code ?? '') ? 'denied' : 'absent'
  }
}

/** Send one request to the control socket in the daemon's state directory (state_dir) and wait for its one-line JSON reply. */
export function controlRequest(stateDirectory: string, command: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  const path = controlSocketIn(stateDirectory)
  const presence = socketPresence(path)
  if (presence === 'denied') return Promise.reject(accessDenied(path))
  if (presence === 'absent') {
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
      if (DENIED.has(error.code ?? '')) return finish(accessDenied(path, error))
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
