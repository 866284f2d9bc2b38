import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {createRequire} from 'node:module'
import {join} from 'node:path'

import {type RunningDaemon, startDaemon, until} from '../helpers/daemon-process.js'
import {daemonSuite} from '../helpers/daemon-suite.js'

interface DgramSocket {
  on(event: 'message', listener: (buf: Buffer) => void): void
  on(event: 'error', listener: (error: Error) => void): void
  bind(path: string): void
  close(): void
}

/** A systemd-notify-compatible receiver: a unix datagram socket, each datagram a set of KEY=value lines. */
function notifyReceiver(path: string): {messages: Array<Record<string, string>>; close: () => void} {
  const unix = createRequire(import.meta.url)('unix-dgram') as {createSocket(type: 'unix_dgram'): DgramSocket}
  const socket = unix.createSocket('unix_dgram')
  const messages: Array<Record<string, string>> = []
  socket.on('message', (buf) => messages.push(Object.fromEntries(buf.toString('utf8').trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]))))
  socket.on('error', (error) => {
    throw error
  })
  socket.bind(path)
  return {close: () => socket.close(), messages}
}

/** The daemon under a fake service manager: READY, WATCHDOG every WATCHDOG_USEC/2, RELOADING … READY on SIGHUP, STOPPING. */
describe('daemon: systemd notifications (Type=notify, WatchdogSec)', function () {
  this.timeout(40_000)
  const suite = daemonSuite('h2k-notify-')
  const {daemons} = suite

  /** startDaemon with the service manager's variables set for that one child. */
  async function startWith(env: Record<string, string>, args: string[]): Promise<RunningDaemon> {
    const names = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']
    const saved = Object.fromEntries(names.map((n) => [n, process.env[n]]))
    try {
      for (const n of names) delete process.env[n]
      Object.assign(process.env, env)
      return await startDaemon(args)
    } finally {
      for (const n of names) {
        if (saved[n] === undefined) delete process.env[n]
        else process.env[n] = saved[n]
      }
    }
  }

  it('an abstract NOTIFY_SOCKET (@name) is reported (sd-notify:unavailable), not fatal', async () => {
    const out = join(suite.dir, 'abstract-out')
    execFileSync('mkdir', ['-p', join(suite.dir, 'abstract-queue')])
    const d = await startWith({NOTIFY_SOCKET: '@h2k-test-notify'}, ['--watch-dir', join(suite.dir, 'abstract-queue'), '--output-dir', out])
    daemons.push(d)
    await until('sd-notify:unavailable', () => /WARN sd-notify:unavailable NOTIFY_SOCKET=@h2k-test-notify is an abstract socket name/.test(d.stderr()), 5000, d)
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
  })

  it('no WATCHDOG=1 when $WATCHDOG_PID names another process (the watchdog is not ours)', async () => {
    const out = join(suite.dir, 'other-out')
    execFileSync('mkdir', ['-p', join(suite.dir, 'other-queue')])
    const receiver = notifyReceiver(join(suite.dir, 'other.sock'))
    const d = await startWith({NOTIFY_SOCKET: join(suite.dir, 'other.sock'), WATCHDOG_PID: '1', WATCHDOG_USEC: '200000'}, ['--watch-dir', join(suite.dir, 'other-queue'), '--output-dir', out])
    daemons.push(d)
    await until('READY=1', () => receiver.messages.some((m) => m.READY === '1'), 10_000, d)
    await new Promise((resolve) => setTimeout(resolve, 600))
    assert.deepEqual(receiver.messages.filter((m) => 'WATCHDOG' in m), [])
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
    await until('STOPPING=1', () => receiver.messages.some((m) => m.STOPPING === '1'), 5000, d)
    receiver.close()
  })

  it('sends READY=1 with MAINPID once started, WATCHDOG=1 pings, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 at stop', async () => {
    const watch = join(suite.dir, 'queue')
    const out = join(suite.dir, 'out')
    execFileSync('mkdir', ['-p', watch])
    const receiver = notifyReceiver(join(suite.dir, 'notify.sock'))
    const d = await startWith({NOTIFY_SOCKET: join(suite.dir, 'notify.sock'), WATCHDOG_USEC: '400000'}, ['--watch-dir', watch, '--output-dir', out])
    daemons.push(d)
    const ready = await until('READY=1', () => receiver.messages.find((m) => m.READY === '1'), 10_000, d)
    assert.equal(ready.MAINPID, String(d.child.pid))
    assert.match(ready.STATUS!, /^running: 0 running, 0 queued, 0 pending$/)
    // The watchdog wants a ping within 400 ms: one every 200 ms.
    const readyAt = receiver.messages.indexOf(ready)
    await until('two WATCHDOG=1 after READY', () => receiver.messages.slice(readyAt).filter((m) => m.WATCHDOG === '1').length >= 2, 5000, d)
    const firstPings = receiver.messages.filter((m) => m.WATCHDOG === '1').length
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const pingsPerSecond = receiver.messages.filter((m) => m.WATCHDOG === '1').length - firstPings
    assert.ok(pingsPerSecond >= 3 && pingsPerSecond <= 7, `about 5 pings a second at WATCHDOG_USEC=400000, got ${pingsPerSecond}`)

    d.child.kill('SIGHUP')
    await until('daemon:reloaded', () => d.stderr().includes('daemon:reloaded'), 10_000, d)
    const reloading = await until('RELOADING=1', () => receiver.messages.findIndex((m) => m.RELOADING === '1') + 1, 5000, d)
    const reloadMessage = receiver.messages[reloading - 1]!
    assert.match(reloadMessage.MONOTONIC_USEC!, /^\d+$/)
    await until('READY=1 after the reload', () => receiver.messages.slice(reloading).some((m) => m.READY === '1'), 5000, d)

    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
    // The datagram and the exit reach this process on their own: the datagram is waited for.
    const stopping = await until(`STOPPING=1 among ${JSON.stringify(receiver.messages.slice(-5))}`, () => receiver.messages.find((m) => m.STOPPING === '1'), 5000, d)
    assert.equal(stopping.STATUS, 'stopping')
    // Nothing after STOPPING=1 (the watchdog stops with the daemon).
    assert.equal(receiver.messages.at(-1), stopping)
    assert.doesNotMatch(d.stderr(), /sd-notify:(failed|unavailable)/)
    receiver.close()
  })
})
