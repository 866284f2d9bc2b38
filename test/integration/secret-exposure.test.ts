/**
 * Red-team regressions (issue #10): places a secret or a privilege could leak that the feature tests did
 * not look at. Each case runs the real thing (a real child process, a real CLI, a real receiver).
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:http'
import {type AddressInfo, type Server, createServer as createNetServer} from 'node:net'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import Database from 'better-sqlite3'

import {loadDaemonConfig} from '../../src/daemon/config.js'
import {LogFile} from '../../src/daemon/log-file.js'
import {JobStore} from '../../src/daemon/store.js'
import type {Channel} from '../../src/delivery/channel.js'
import {DeliveryEngine} from '../../src/delivery/delivery-engine.js'
import {postJson} from '../../src/delivery/http-post.js'
import {openOutbox} from '../helpers/outbox-file.js'
import type {H2KError} from '@hyper2kvm/plugin-api'
import {runTool} from '../../src/exec/run-tool.js'
import {parseNotificationSettings} from '../../src/notify/settings.js'
import {REDACTED, redactSecrets, registerSecret} from '../../src/secrets/redact.js'
import {until} from '../helpers/daemon-process.js'
import {CLI, runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {linkTestPlugins, userEnv} from '../helpers/user-plugins.js'

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
    // The slowest of three bare starts: the machine may be busy with other tests.
    const bootstrap = Math.max(await nodeStartupMs(), await nodeStartupMs(), await nodeStartupMs())
    const {cleanup, dir} = makeTempDir('h2k-usr1-')
    // The CLI starts in a fraction of a second now; a linked plugin whose register hook takes 2 s keeps the
    // daemon loading long enough for signals to land inside start-up on any machine, fast or busy.
    const env = userEnv(join(dir, 'user'))
    await linkTestPlugins(env, 'slow-register')
    let child: ReturnType<typeof spawn> | undefined
    try {
      const proc = spawn(process.execPath, [CLI, 'daemon', '--watch-dir', join(dir, 'in'), '--output-dir', join(dir, 'out')], {env: {...process.env, ...env}, stdio: ['ignore', 'ignore', 'pipe']})
      child = proc
      let stderr = ''
      proc.stderr.on('data', (chunk) => (stderr += chunk))
      const exited = new Promise<number | null>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? (signal === null ? null : -1))))
      // From just after Node's own start-up (bin/run.js's first import guards from there; before it, Node itself
      // handles the signal) until the daemon runs: module loading, oclif, configuration.
      await sleep(3 * bootstrap + 100)
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

describe('secret exposure: webhook URLs and headers', function () {
  this.timeout(60_000)
  let dir: string
  let cleanup: () => void
  beforeEach(() => ({cleanup, dir} = makeTempDir('h2k-hooks-')))
  afterEach(() => cleanup())

  it('config show (text and JSON) shows where a webhook goes, never the credential in its path, query or a header', async () => {
    const config = join(dir, 'daemon.yaml')
    writeFileSync(
      config,
      [
        'command: daemon',
        `watch_dir: ${join(dir, 'in')}`,
        `output_dir: ${join(dir, 'out')}`,
        'notifications:',
        '  enabled: true',
        '  webhook_type: slack',
        '  webhook_url: "https://hooks.slack.com/services/T0000/B0000/SlackPathCredential"',
        '  webhooks:',
        '    - url: "https://receiver.example.com/hook?token=QueryTokenCredential"',
        '      headers: {X-Api-Key: HeaderKeyCredential, Ocp-Apim-Subscription-Key: SubscriptionKeyCredential, X-Team: ops}',
        '',
      ].join('\n'),
    )
    for (const args of [[], ['--json']]) {
      const result = await runCli(['config', 'show', '--config', config, ...args])
      assert.equal(result.code, 0, result.stderr)
      const all = result.stdout + result.stderr
      for (const secret of ['SlackPathCredential', 'QueryTokenCredential', 'HeaderKeyCredential', 'SubscriptionKeyCredential']) assert.ok(!all.includes(secret), `${secret} shown by config show ${args.join(' ')}`)
      assert.ok(all.includes('https://hooks.slack.com/[REDACTED]'), 'the webhook destination is still shown')
      if (args.length > 0) assert.ok(all.includes('"X-Team": "ops"'), 'a plain header still shows')
    }
  })

  it('a webhook URL with user:password is refused at load without quoting it (fetch would echo it into logs and the outbox)', async () => {
    await assert.rejects(
      parseNotificationSettings({enabled: true, webhook_url: 'https://hook-user:UserInfoPassword@receiver.example.com/hook'}, dir),
      (error: H2KError) => error.code === 'H2K_JOB_INVALID' && /user name or password/.test(error.message) && !JSON.stringify({...error.details, m: error.message}).includes('UserInfoPassword'),
    )
  })

  it('a header value fetch would refuse (an embedded newline) is refused at load, naming the header, never quoting the value', async () => {
    await assert.rejects(
      parseNotificationSettings({enabled: true, webhook_headers: {'X-Api-Key': 'HeaderPart1\nHeaderPart2'}, webhook_url: 'https://receiver.example.com/hook'}, dir),
      (error: H2KError) => error.code === 'H2K_JOB_INVALID' && error.message.includes('X-Api-Key') && !error.message.includes('HeaderPart'),
    )
    // A trailing newline (a YAML block scalar) is trimmed by fetch: accepted.
    await parseNotificationSettings({enabled: true, webhook_headers: {'X-Api-Key': 'HeaderKeyWithNewline\n'}, webhook_url: 'https://receiver.example.com/hook'}, dir)
    assert.equal(redactSecrets('key=HeaderKeyWithNewline'), `key=${REDACTED}`, 'a credential header (not only Authorization) is registered for redaction')
  })

  it("a delivery failure's reason is redacted before the outbox stores it (jobs.db is a file for forensics and backups)", async () => {
    const secret = 'ReasonEchoedCredential42'
    registerSecret(secret)
    const echoing: Channel = {id: 'echo:1', label: 'echo', send: async () => ({ok: false, permanent: true, reason: `server said: bad key ${secret}`})}
    const path = join(dir, 'jobs.db')
    const outbox = openOutbox(path)
    const logged: string[] = []
    const engine = new DeliveryEngine(outbox, [echoing], (_l, event, _f, message = '') => logged.push(`${event} ${message}`), {baseDelayMs: 10, timeoutMs: 2000})
    try {
      engine.start()
      engine.enqueue('test', {text: 'hello'})
      await until('the delivery given up', () => outbox.counts().failed === 1, 10_000)
    } finally {
      await engine.close()
      outbox.close()
    }
    const db = new Database(path, {readonly: true})
    const stored = JSON.stringify(db.prepare('SELECT * FROM notification_outbox').all())
    db.close()
    assert.ok(stored.includes(REDACTED), stored)
    assert.ok(!stored.includes(secret), `the outbox stored the secret: ${stored}`)
    assert.ok(!logged.join('\n').includes(secret), logged.join('\n'))
  })
})

describe('notification delivery against a hostile receiver', function () {
  this.timeout(60_000)
  it('a receiver streaming an endless body gets its answer read, not its body: the attempt ends at once, nothing is buffered', async () => {
    let streamed = 0
    const server = createServer((req, res) => {
      req.resume()
      res.writeHead(200, {'Content-Type': 'application/octet-stream'})
      const chunk = Buffer.alloc(1 << 20)
      const pump = (): void => {
        while (!res.destroyed) {
          streamed += chunk.length
          if (!res.write(chunk)) break
        }
        if (!res.destroyed) res.once('drain', pump)
      }
      pump()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const {port} = server.address() as AddressInfo
    try {
      const started = Date.now()
      const outcome = await postJson(`http://127.0.0.1:${port}/hook`, '{}', {}, AbortSignal.timeout(8000))
      const took = Date.now() - started
      assert.deepEqual(outcome, {detail: 'HTTP 200', ok: true})
      assert.ok(took < 3000, `the attempt took ${took} ms reading a body nobody needs (${Math.round(streamed / 1048576)} MiB streamed)`)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})

describe("files the daemon writes for operators: log_file's place and owner", function () {
  this.timeout(60_000)
  let dir: string
  let cleanup: () => void
  beforeEach(() => ({cleanup, dir} = makeTempDir('h2k-logfile-')))
  afterEach(() => cleanup())

  it('a log_file someone else created (another user in a shared directory) is refused, at start and at reopen (as root, like the suite)', () => {
    const path = join(dir, 'daemon.log')
    writeFileSync(path, '')
    chownSync(path, 65534, 65534)
    assert.throws(() => new LogFile(path), (error: H2KError) => error.code === 'H2K_UNSAFE_PATH' && /another user/.test(error.message))
    // Ours at start, replaced by another user's file before logrotate's SIGUSR1: the old file stays in use.
    rmSync(path)
    const log = new LogFile(path)
    try {
      renameSync(path, `${path}.1`)
      writeFileSync(path, '')
      chownSync(path, 65534, 65534)
      assert.throws(() => log.reopen(), (error: H2KError) => error.code === 'H2K_UNSAFE_PATH')
      log.write('still here\n')
      assert.equal(readFileSync(`${path}.1`, 'utf8'), 'still here\n')
      assert.equal(readFileSync(path, 'utf8'), '')
    } finally {
      log.close()
    }
  })

  it('a log_file inside the drop directory is refused when the configuration loads (droppers could swap it or its directory)', async () => {
    const config = join(dir, 'daemon.yaml')
    writeFileSync(config, [`watch_dir: ${join(dir, 'in')}`, `output_dir: ${join(dir, 'out')}`, `log_file: ${join(dir, 'in', '.logs', 'daemon.log')}`, ''].join('\n'))
    await assert.rejects(loadDaemonConfig({config}), (error: H2KError) => error.code === 'H2K_USAGE' && /inside the drop directory/.test(error.message))
    writeFileSync(config, [`watch_dir: ${join(dir, 'in')}`, `output_dir: ${join(dir, 'out')}`, `log_file: ${join(dir, 'logs', 'daemon.log')}`, ''].join('\n'))
    assert.equal((await loadDaemonConfig({config})).logFile, join(dir, 'logs', 'daemon.log'))
  })
})

describe('notify test against a hostile SMTP server', function () {
  this.timeout(60_000)
  /** A raw SMTP server (smtp-server would clean its own answers) whose final answer carries escape sequences. */
  const hostileSmtp = (): Server =>
    createNetServer((socket) => {
      let data = false
      let buffered = ''
      socket.write('220 hostile ESMTP\r\n')
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('latin1')
        for (let end = buffered.indexOf('\r\n'); end >= 0; end = buffered.indexOf('\r\n')) {
          const line = buffered.slice(0, end)
          buffered = buffered.slice(end + 2)
          if (data) {
            if (line === '.') {
              data = false
              socket.write('250 queued \u001b]0;owned\u0007\u001b[2J ok    forged\r\n')
            }
          } else if (/^(EHLO|HELO)/i.test(line)) socket.write('250 hostile\r\n')
          else if (/^DATA/i.test(line)) {
            data = true
            socket.write('354 go on\r\n')
          } else if (/^QUIT/i.test(line)) socket.end('221 bye\r\n')
          else socket.write('250 ok\r\n')
        }
      })
      socket.on('error', () => undefined)
    })

  it("prints the server's answer escaped: no escape sequence reaches the terminal", async () => {
    const {cleanup, dir} = makeTempDir('h2k-smtp-')
    const server = hostileSmtp()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const {port} = server.address() as AddressInfo
    try {
      const config = join(dir, 'daemon.yaml')
      writeFileSync(config, [`watch_dir: ${join(dir, 'in')}`, `output_dir: ${join(dir, 'out')}`, 'notifications:', '  enabled: true', '  email_enabled: true', '  smtp_server: 127.0.0.1', `  smtp_port: ${port}`, '  smtp_security: none', '  email_from: h2k@example.com', '  email_to: ops@example.com', ''].join('\n'))
      const result = await runCli(['notify', 'test', '--config', config])
      assert.equal(result.code, 0, result.stdout + result.stderr)
      assert.match(result.stdout, /queued/)
      assert.ok(!/[\u001b\u0007]/.test(result.stdout), JSON.stringify(result.stdout))
    } finally {
      server.close()
      cleanup()
    }
  })
})

describe('ctl backup: where the backup (configuration with secrets, job store) goes', function () {
  this.timeout(60_000)
  let dir: string
  let cleanup: () => void
  beforeEach(() => ({cleanup, dir} = makeTempDir('h2k-backup-')))
  afterEach(() => cleanup())

  it('a destination others may write into without the sticky bit (or another user owns) is refused; the backup stays 0700/0600 without secrets in backup.json', async () => {
    const out = join(dir, 'out')
    JobStore.open(out).close()
    const config = join(dir, 'daemon.yaml')
    writeFileSync(config, `watch_dir: ${join(dir, 'in')}\noutput_dir: ${out}\nnotifications:\n  enabled: false\n  smtp_password: PlainBackupPassword\n`, {mode: 0o600})
    const shared = join(dir, 'shared')
    mkdirSync(shared)
    chmodSync(shared, 0o777)
    const refused = await runCli(['ctl', 'backup', '--config', config, '--to', shared])
    assert.notEqual(refused.code, 0, refused.stdout)
    assert.match(refused.stderr, /writable by other users/)
    assert.deepEqual(readdirSync(shared), [])
    const theirs = join(dir, 'theirs')
    mkdirSync(theirs, {mode: 0o700})
    chownSync(theirs, 65534, 65534)
    assert.match((await runCli(['ctl', 'backup', '--config', config, '--to', theirs])).stderr, /belongs to another user/)
    // With the sticky bit (/tmp's kind) others cannot move our entries: allowed, and the backup is private.
    chmodSync(shared, 0o1777)
    const done = await runCli(['ctl', 'backup', '--config', config, '--to', shared, '--json'])
    assert.equal(done.code, 0, done.stderr)
    const backup = done.json.dir as string
    assert.equal(statSync(backup).mode & 0o777, 0o700)
    for (const name of readdirSync(backup)) assert.equal(statSync(join(backup, name)).mode & 0o777, 0o600, name)
    assert.ok(!readFileSync(join(backup, 'backup.json'), 'utf8').includes('PlainBackupPassword'))
    assert.ok(!done.stdout.includes('PlainBackupPassword') && !done.stderr.includes('PlainBackupPassword'))
  })
})

describe('notification outbox under a flood', function () {
  this.timeout(60_000)
  it('stops storing new messages at maxPending while a receiver is down (logged once per spell)', async () => {
    const {cleanup, dir} = makeTempDir('h2k-flood-')
    const down: Channel = {id: 'down:1', label: 'down', send: async () => ({ok: false, permanent: false, reason: 'HTTP 503', retryAfterMs: 3_600_000})}
    const outbox = openOutbox(join(dir, 'jobs.db'))
    const logged: string[] = []
    const engine = new DeliveryEngine(outbox, [down], (_l, event) => logged.push(event), {maxPending: 5, timeoutMs: 2000})
    try {
      engine.start()
      for (let i = 0; i < 50; i++) engine.enqueue('conversion_failure', {n: i})
      assert.equal(outbox.counts().pending, 5)
      assert.equal(logged.filter((e) => e === 'notify:outbox-full').length, 1)
    } finally {
      await engine.close()
      outbox.close()
      cleanup()
    }
  })
})
