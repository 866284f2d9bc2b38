import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {chmodSync, readFileSync} from 'node:fs'
import {connect} from 'node:net'
import {join} from 'node:path'

import {MAX_CONNECTIONS} from '../../src/daemon/control-server.js'
import {statusLatency} from '../helpers/control-latency.js'
import {killAll, type RunningDaemon, startDaemon} from '../helpers/daemon-process.js'
import {CLI, runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const rssKiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1])

/** Send raw bytes on the control socket; resolves with what came back once the daemon closes it (or after `waitMs`). */
function exchange(socketPath: string, send: (socket: ReturnType<typeof connect>) => void, waitMs = 10_000): Promise<{reply: string; closedByDaemon: boolean}> {
  return new Promise((resolve) => {
    const socket = connect(socketPath)
    let reply = ''
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({closedByDaemon: false, reply})
    }, waitMs)
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => (reply += chunk))
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({closedByDaemon: true, reply})
    })
    socket.on('connect', () => send(socket))
  })
}

/** The control socket as an attacker with access to it would use it (#9 finding 8). */
describe('daemon: the control socket (bounded, strictly typed, 0600) and ctl', function () {
  this.timeout(120_000)
  let dir: string
  let cleanup: () => void
  const daemons: RunningDaemon[] = []
  before(() => ({cleanup, dir} = makeTempDir('h2k-control-')))
  afterEach(() => killAll(daemons))
  after(() => cleanup())

  it('an endless line is cut at 1 MiB: the daemon replies an error, closes, does not grow and still answers', async () => {
    const out = join(dir, 'out1')
    const d = await startDaemon(['--watch-dir', join(dir, 'watch1'), '--output-dir', out], out)
    daemons.push(d)
    const socketPath = join(out, '.daemon', 'control.sock')
    await statusLatency(socketPath)
    const before = rssKiB(d.child.pid!)
    // 256 MiB without a newline, in 1 MiB writes, for as long as the daemon keeps the connection open.
    const chunk = Buffer.alloc(1024 * 1024, 'a')
    const {closedByDaemon, reply} = await exchange(socketPath, (socket) => {
      let sent = 0
      const pump = (): void => {
        while (sent < 256 && !socket.destroyed) {
          sent++
          if (!socket.write(chunk)) return void socket.once('drain', pump)
        }
      }
      pump()
    })
    assert.ok(closedByDaemon, 'the daemon closed the connection')
    const answer = JSON.parse(reply.split('\n')[0]!) as {ok: boolean; error: {code: string; message: string}}
    assert.equal(answer.ok, false)
    assert.equal(answer.error.code, 'H2K_USAGE')
    assert.match(answer.error.message, /longer than 1048576 bytes/)
    const grownMiB = (rssKiB(d.child.pid!) - before) / 1024
    assert.ok(grownMiB < 48, `the daemon grew by ${grownMiB.toFixed(1)} MiB`)
    assert.ok((await statusLatency(socketPath)) < 1000, 'and still answers')
    assert.match(d.stderr(), /control:oversize/)
  })

  it('only {"command": "<known>"} is a request: an array command, unknown keys, other shapes are refused', async () => {
    const out = join(dir, 'out2')
    const d = await startDaemon(['--watch-dir', join(dir, 'watch2'), '--output-dir', out], out)
    daemons.push(d)
    const socketPath = join(out, '.daemon', 'control.sock')
    const refused = [
      ['{"command":["stop"]}', /must be a string \(got an array\)/],
      ['{"command":"stop","force":true}', /unknown key\(s\) "force"/],
      ['["stop"]', /expected an object/],
      ['"stop"', /expected an object/],
      ['{"command":{"toString":"stop"}}', /must be a string/],
      ['{"command":"STOP"}', /Unknown control command "STOP"/],
      ['{command: stop}', /not JSON/],
    ] as const
    const {reply} = await exchange(socketPath, (socket) => socket.write(`${refused.map(([line]) => line).join('\n')}\n{"command":"status"}\n`), 3000)
    const replies = reply.trim().split('\n').map((l) => JSON.parse(l) as {ok: boolean; state?: string; error?: {code: string; message: string}})
    assert.equal(replies.length, refused.length + 1, reply)
    for (const [index, [line, message]] of refused.entries()) {
      assert.equal(replies[index]!.ok, false, line)
      assert.equal(replies[index]!.error!.code, 'H2K_USAGE', line)
      assert.match(replies[index]!.error!.message, message, line)
    }
    assert.equal(replies.at(-1)!.ok, true)
    assert.equal(replies.at(-1)!.state, 'RUNNING', 'nothing above stopped (or paused) the daemon')
    assert.equal(d.child.exitCode, null)

    // Connections held open beyond the limit: the next one is closed unanswered; freed slots serve again.
    const held = await Promise.all(
      Array.from({length: MAX_CONNECTIONS}, () => new Promise<ReturnType<typeof connect>>((resolve) => {
        const socket = connect(socketPath, () => resolve(socket))
        socket.on('error', () => {})
      })),
    )
    await new Promise((resolve) => setTimeout(resolve, 200))
    const extra = await exchange(socketPath, (socket) => socket.write('{"command":"status"}\n'), 3000)
    assert.ok(extra.closedByDaemon && extra.reply === '', `connection ${MAX_CONNECTIONS + 1} is refused: ${extra.reply}`)
    for (const socket of held) socket.destroy()
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.ok((await statusLatency(socketPath)) < 1000)
    assert.match(d.stderr(), /control:busy/)
    assert.equal((await runCli(['ctl', 'stop', '--output-dir', out])).code, 0)
    assert.equal(await d.exited, 0)
  })

  it('ctl as another user says permission denied (H2K_DAEMON_ACCESS_DENIED), not "not running"', async () => {
    const base = join(dir, 'perm')
    const out = join(base, 'out')
    const d = await startDaemon(['--watch-dir', join(base, 'watch'), '--output-dir', out], out)
    daemons.push(d)
    // nobody, without root's groups, as an administrator's colleague would be.
    const asNobody = (): {code: string; message: string; exit: number | null} => {
      const run = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, CLI, 'ctl', 'status', '--output-dir', out, '--json'], {
        encoding: 'utf8',
        env: {...process.env, HOME: base, NO_COLOR: '1'},
      })
      const error = (JSON.parse(run.stdout) as {error: {code: string; message: string}}).error
      return {...error, exit: run.status}
    }
    // The state directory (0700) hides the socket from others.
    const hidden = asNobody()
    assert.equal(hidden.code, 'H2K_DAEMON_ACCESS_DENIED', hidden.message)
    assert.equal(hidden.exit, 12)
    assert.match(hidden.message, /Permission denied/)
    // Directories opened up: the socket itself (0600) refuses the connection.
    for (const path of [dir, base, out, join(out, '.daemon')]) chmodSync(path, 0o755)
    const refused = asNobody()
    assert.equal(refused.code, 'H2K_DAEMON_ACCESS_DENIED', refused.message)
    assert.ok((await statusLatency(join(out, '.daemon', 'control.sock'))) < 1000, 'root still gets its answer')
    assert.equal((await runCli(['ctl', 'stop', '--output-dir', out])).code, 0)
    assert.equal(await d.exited, 0)
  })
})
