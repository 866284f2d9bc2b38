/**
 * The main thread's side of one PostgreSQL driver thread (postgres-thread.ts): start it, ask it one thing
 * and wait synchronously (Atomics.wait, in slices) for the answer, up to a backstop — the thread bounds its
 * own work, the backstop catches a thread that hangs or died without a word. A thread that missed its
 * backstop, or died, is terminated and never asked again (PostgresDb starts a new one).
 */
import {MessageChannel, type MessagePort, receiveMessageOnPort, Worker} from 'node:worker_threads'

import {SIGNAL, type ThreadAnswer, type ThreadError, type ThreadOptions, type ThreadRequest, type ThreadWakeup} from './postgres-protocol.js'

/** Run from source (tests, under tsx): the driver thread needs the same TypeScript loader. */
const FROM_SOURCE = import.meta.url.endsWith('.ts')
const THREAD_URL = new URL(`postgres-thread${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url)
/** One Atomics.wait; between two, the backstop is checked. */
const SLICE_MS = 100
/** A thread starting from source (tsx compiling it) takes a while on a loaded machine; added to the first call's backstop. */
const START_ALLOWANCE_MS = FROM_SOURCE ? 20_000 : 5000

export type ThreadReply = {ok: true; rows: unknown[]; changes: number} | {ok: false; error: ThreadError}

export class DriverThread {
  private alive = true
  private started = false

  private constructor(
    private readonly worker: Worker,
    private readonly port: MessagePort,
    private readonly signal: Int32Array,
  ) {}

  /** Start a thread for `options`; `onWake(channel)` runs on the event loop for each NOTIFY (or reconnection). */
  static start(options: ThreadOptions, onWake: (channel: string) => void): DriverThread {
    const {port1, port2} = new MessageChannel()
    const sab = new SharedArrayBuffer(4)
    const signal = new Int32Array(sab)
    // From source, the thread first registers tsx's loader, then imports the TypeScript entry; a failure there is reported as the thread's death.
    const dead = `() => import('node:worker_threads').then(({workerData}) => { const s = new Int32Array(workerData.signal); Atomics.store(s, 0, ${SIGNAL.DEAD}); Atomics.notify(s, 0) })`
    const entry = FROM_SOURCE ? `import('tsx/esm/api').then((tsx) => tsx.register()).then(() => import(${JSON.stringify(THREAD_URL.href)})).catch(${dead})` : THREAD_URL
    const worker = new Worker(entry, {eval: FROM_SOURCE, transferList: [port2], workerData: {options, port: port2, signal: sab}})
    // The thread never keeps the process alive by itself (a CLI command that forgot close() still exits).
    worker.unref()
    const thread = new DriverThread(worker, port1, signal)
    worker.on('message', (message: ThreadWakeup) => {
      if (typeof message?.wake === 'string') onWake(message.wake)
    })
    // The thread failed outside a request (its own handler marked it DEAD, or it could not): the next call reports it.
    worker.on('error', () => Atomics.store(signal, 0, SIGNAL.DEAD))
    worker.on('exit', () => {
      thread.alive = false
    })
    return thread
  }

  get usable(): boolean {
    return this.alive && Atomics.load(this.signal, 0) !== SIGNAL.DEAD
  }

  /**
   * Ask the thread, and wait for its answer up to `backstopMs` (plus the start allowance on a new thread).
   * Never throws: a dead or hung thread is terminated and reported as unavailable.
   */
  call(request: ThreadRequest, backstopMs: number): ThreadReply {
    // The previous answer taken, ready for the next.
    Atomics.compareExchange(this.signal, 0, SIGNAL.ANSWERED, SIGNAL.IDLE)
    if (!this.usable) return this.died('the PostgreSQL driver thread has ended')
    this.port.postMessage(request)
    const waitMs = backstopMs + (this.started ? 0 : START_ALLOWANCE_MS)
    const limit = Date.now() + waitMs
    this.started = true
    while (Atomics.load(this.signal, 0) === SIGNAL.IDLE) {
      const left = limit - Date.now()
      if (left <= 0) {
        this.terminate()
        return {error: {code: 'ETIMEDOUT', kind: 'unavailable', message: `the PostgreSQL driver thread did not answer within ${Math.round(waitMs / 1000)} s (it was stopped; a new one takes over)`}, ok: false}
      }
      Atomics.wait(this.signal, 0, SIGNAL.IDLE, Math.min(SLICE_MS, left))
    }
    if (Atomics.load(this.signal, 0) === SIGNAL.DEAD) return this.died('the PostgreSQL driver thread has ended')
    const answer = receiveMessageOnPort(this.port)?.message as ThreadAnswer | undefined
    if (answer === undefined) return this.died('the PostgreSQL driver thread gave no answer')
    return answer
  }

  /** The thread died: its last word (its failure handler posts why), and it is terminated. */
  private died(fallback: string): ThreadReply {
    let last: ThreadAnswer | undefined
    for (let message = receiveMessageOnPort(this.port); message !== undefined; message = receiveMessageOnPort(this.port)) last = message.message as ThreadAnswer
    this.terminate()
    return {error: last !== undefined && !last.ok ? last.error : {kind: 'unavailable', message: fallback}, ok: false}
  }

  /** Stop the thread now (its connections die with it); idempotent. */
  terminate(): void {
    if (this.alive) {
      this.alive = false
      Atomics.store(this.signal, 0, SIGNAL.DEAD)
    }
    this.port.close()
    void this.worker.terminate().catch(() => undefined)
  }
}
