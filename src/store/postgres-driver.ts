/**
 * The PostgreSQL driver thread's work, loaded by postgres-thread.ts once its failure handlers are in place:
 * the requests of the main thread, one at a time, each bounded (the open by connect_timeout, every later one
 * by B = statement_timeout), the breaker in front of them, and the LISTEN connection beside them.
 */
import type {MessagePort} from 'node:worker_threads'

import {Breaker} from './postgres-breaker.js'
import {Connections, type Deadline, deadlineIn} from './postgres-connections.js'
import {ThreadFailure} from './postgres-failures.js'
import {Listener} from './postgres-listener.js'
import {SIGNAL, type ThreadAnswer, type ThreadOptions, type ThreadRequest, type ThreadWakeup} from './postgres-protocol.js'
import {Session} from './postgres-session.js'

/** close() gives up on a polite shutdown after this long (the main thread terminates the thread anyway). */
const CLOSE_BOUND_MS = 2000

export function startDriver(options: ThreadOptions, port: MessagePort, signal: Int32Array, wakePort: {postMessage(message: ThreadWakeup): void}): void {
  const connections = new Connections(options)
  const wake = (channel: string): void => wakePort.postMessage({wake: channel})
  let listener: Listener | undefined
  const breaker = new Breaker({...connections.clientConfig, connectionTimeoutMillis: options.statementTimeoutMs}, {
    closed: () => listener?.resume(),
    opened: () => {
      connections.reset()
      listener?.suspend()
    },
  })
  listener = new Listener(connections.clientConfig, wake, () => breaker.isOpen)
  const session = new Session(connections)
  if (options.channels.length > 0) listener.adopt(options.channels)

  const bound = (): Deadline => deadlineIn(options.statementTimeoutMs)
  /** Calls that need the server fail at once while the breaker is open (not inside a transaction: it ends on its own connection). */
  const gate = (): void => {
    if (breaker.isOpen && !session.inTransaction) throw breaker.refusal()
  }

  async function close(): Promise<void> {
    breaker.stop()
    listener?.close()
    const deadline = deadlineIn(CLOSE_BOUND_MS)
    const done = session.close(deadline).then(() => connections.end())
    await Promise.race([done.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, CLOSE_BOUND_MS).unref())])
  }

  async function handle(request: ThreadRequest): Promise<ThreadAnswer> {
    switch (request.op) {
      case 'connect': {
        await session.query('SELECT 1', [], deadlineIn(options.connectTimeoutMs))
        return {changes: 0, ok: true, rows: []}
      }
      case 'query': {
        gate()
        const result = await session.query(request.sql, request.params, bound())
        return {changes: result.rowCount ?? 0, ok: true, rows: request.rows ? result.rows : []}
      }
      case 'begin':
        gate()
        await session.begin(bound())
        break
      case 'commit':
        await session.finish('COMMIT', bound())
        break
      case 'rollback':
        await session.finish('ROLLBACK', bound())
        break
      case 'listen':
        gate()
        await listener!.listen(request.channel, bound())
        break
      case 'unlisten':
        await listener!.unlisten(request.channel)
        break
      case 'close':
        await close()
        break
    }
    return {changes: 0, ok: true, rows: []}
  }

  function answer(reply: ThreadAnswer): void {
    port.postMessage(reply)
    Atomics.store(signal, 0, SIGNAL.ANSWERED)
    Atomics.notify(signal, 0)
  }

  let queue = Promise.resolve()
  port.on('message', (request: ThreadRequest) => {
    queue = queue.then(async () => {
      try {
        answer(await handle(request))
      } catch (error) {
        if (error instanceof ThreadFailure) {
          if (error.opensBreaker && request.op !== 'connect') breaker.trip(error.message)
          answer({error: error.failure, ok: false})
        } else {
          answer({error: {kind: 'sql', message: error instanceof Error ? error.message : String(error)}, ok: false})
        }
      }
      if (request.op === 'close') port.close()
    })
  })
}
