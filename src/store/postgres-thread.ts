/**
 * The entry of PostgresDb's driver thread (postgres-driver.ts does the work). Before anything that can fail
 * is loaded (`pg` and the driver, by dynamic import), it installs the handlers that report a failure of this
 * thread to the main thread — an answer saying why, and the DEAD signal — so a main thread waiting in
 * Atomics.wait never waits for a thread that has died (while loading, or later).
 */
import {type MessagePort, parentPort, workerData} from 'node:worker_threads'

import {SIGNAL, type ThreadAnswer, type ThreadOptions} from './postgres-protocol.js'

const {options, port, signal: sab} = workerData as {options: ThreadOptions; port: MessagePort; signal: SharedArrayBuffer}
const signal = new Int32Array(sab)

let reported = false
function die(error: unknown): void {
  if (!reported) {
    reported = true
    const message = error instanceof Error ? error.message : String(error)
    port.postMessage({error: {kind: 'unavailable', message: `the PostgreSQL driver thread failed: ${message}`}, ok: false} satisfies ThreadAnswer)
    Atomics.store(signal, 0, SIGNAL.DEAD)
    Atomics.notify(signal, 0)
  }
  process.exit(1)
}

process.on('uncaughtException', die)
process.on('unhandledRejection', die)

/**
 * TEST ONLY (store-engines.test.ts): HYPER2KVM_TEST_PG_THREAD_FAULT makes this thread fail as a broken
 * install or a bug would — `load`: loading the driver fails; `crash-at:N`: the thread crashes on receiving its
 * N-th request. It can only break the store, never load anything else.
 */
const fault = process.env.HYPER2KVM_TEST_PG_THREAD_FAULT
const crashAt = /^crash-at:(\d+)$/.exec(fault ?? '')?.[1]
/** Counts requests beside the driver (added after it: a port delivers only to the listeners it has when a message arrives). */
function crashOnRequest(n: number): void {
  let requests = 0
  port.on('message', () => {
    if (++requests === n) die(new Error(`crashed on request ${requests} (HYPER2KVM_TEST_PG_THREAD_FAULT)`))
  })
}
const loading = fault === 'load' ? Promise.reject(new Error('loading the driver failed (HYPER2KVM_TEST_PG_THREAD_FAULT=load)')) : import('./postgres-driver.js')

loading.then((driver) => {
  driver.startDriver(options, port, signal, parentPort!)
  if (crashAt !== undefined) crashOnRequest(Number(crashAt))
}, die)
