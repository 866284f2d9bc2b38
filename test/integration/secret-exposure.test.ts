/**
 * Red-team regressions (issue #10): places a secret or a privilege could leak that the feature tests did
 * not look at. Each case runs the real thing (a real child process, a real CLI, a real receiver).
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {runTool} from '../../src/exec/run-tool.js'
import {CLI} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('secret exposure: children started by hyper2kvm', () => {
  const PRIVATE = {
    CREDENTIALS_DIRECTORY: '/run/credentials/hyper2kvm.service',
    HYPER2KVM_METRICS_TOKEN: 'metrics-token-value-123456',
    HYPER2KVM_NOTIFICATIONS_SMTP_PASSWORD: 'smtp-password-value',
    HYPER2KVM_NOTIFICATIONS_WEBHOOKS_0_SECRET: 'webhook-secret-value',
    NOTIFY_SOCKET: '/run/systemd/notify',
  }
  let saved: Record<string, string | undefined>
  beforeEach(() => {
    saved = Object.fromEntries(Object.keys(PRIVATE).map((k) => [k, process.env[k]]))
    Object.assign(process.env, PRIVATE, {HYPER2KVM_OUTPUT_FORMAT: 'qcow2'})
  })
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]
    else process.env[k] = v
    delete process.env.HYPER2KVM_OUTPUT_FORMAT
  })

  it('an unsandboxed tool (qemu-img, guestfish, supermin) inherits no secret variable, CREDENTIALS_DIRECTORY or NOTIFY_SOCKET', async () => {
    const {stdout} = await runTool('env', [], {env: {LIBGUESTFS_BACKEND: 'direct'}})
    for (const [name, value] of Object.entries(PRIVATE)) {
      assert.ok(!stdout.includes(`${name}=`), `${name} reached the child`)
      assert.ok(!stdout.includes(value), `the value of ${name} reached the child`)
    }
    // What the tool needs is still there: PATH, the caller's variables, harmless settings.
    assert.match(stdout, /^PATH=/m)
    assert.match(stdout, /^LIBGUESTFS_BACKEND=direct$/m)
    assert.match(stdout, /^HYPER2KVM_OUTPUT_FORMAT=qcow2$/m)
  })
})

/** How long a bare Node takes to run its first line on this (loaded) machine right now. */
async function nodeStartupMs(): Promise<number> {
  const started = Date.now()
  const proc = spawn(process.execPath, ['-e', 'process.stdout.write("up")'], {stdio: ['ignore', 'pipe', 'ignore']})
  await new Promise((resolve) => proc.stdout.once('data', resolve))
  const ms = Date.now() - started
  await new Promise((resolve) => proc.once('exit', resolve))
  return ms
}

describe('secret exposure: SIGUSR1 while the CLI starts', function () {
  this.timeout(60_000)
  it('a SIGUSR1 while the daemon is still loading (logrotate early) neither opens the inspector nor ends the process', async () => {
    const bootstrap = await nodeStartupMs()
    const {cleanup, dir} = makeTempDir('h2k-usr1-')
    let child: ReturnType<typeof spawn> | undefined
    try {
      const proc = spawn(process.execPath, [CLI, 'daemon', '--watch-dir', join(dir, 'in'), '--output-dir', join(dir, 'out')], {stdio: ['ignore', 'ignore', 'pipe']})
      child = proc
      let stderr = ''
      proc.stderr.on('data', (chunk) => (stderr += chunk))
      const exited = new Promise<number | null>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? (signal === null ? null : -1))))
      // From just after Node's own start-up (bin/run.js's first import guards from there; before it, Node itself
      // handles the signal) until the daemon runs: module loading, oclif, configuration.
      await sleep(2 * bootstrap + 50)
      let sent = 0
      while (!stderr.includes('daemon:start') && proc.exitCode === null && proc.signalCode === null && sent < 500) {
        proc.kill('SIGUSR1')
        sent++
        await sleep(20)
      }
      assert.ok(sent > 3, `too few signals landed during start-up (${sent})`)
      assert.ok(!/Debugger listening/.test(stderr), `SIGUSR1 opened the inspector:\n${stderr.slice(0, 400)}`)
      assert.ok(stderr.includes('daemon:start'), `the daemon did not start:\n${stderr.slice(0, 400)}`)
      proc.kill('SIGTERM')
      assert.equal(await exited, 0)
    } finally {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      cleanup()
    }
  })
})
