import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import Database from 'better-sqlite3'

import {jobOf, startDaemon, today, until} from '../helpers/daemon-process.js'
import {daemonSuite} from '../helpers/daemon-suite.js'
import {makePatternedRaw} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'
import {argvContaining, filesContaining} from '../helpers/secret-leaks.js'
import {makeCertificate, SmtpReceiver} from '../helpers/smtp-receiver.js'
import {WebhookReceiver} from '../helpers/webhook-receiver.js'

const PASSWORD = 'smtp-pass-7c1e93b2'
const SECRET = 'hook-secret-4a8f0d6e'
const TOKEN = 'bearer-token-e05b21'
const USER = 'notifier'

function outbox(out: string): Array<{id: string; channel: string; event: string; status: string; attempts: number}> {
  const db = new Database(join(out, '.daemon', 'jobs.db'), {readonly: true})
  try {
    return db.prepare('SELECT id, channel, event, status, attempts FROM notification_outbox ORDER BY created_at').all() as Array<{id: string; channel: string; event: string; status: string; attempts: number}>
  } finally {
    db.close()
  }
}

/** Descendant processes of `pid` (pid, ppid, argv) read from /proc. */
function descendants(pid: number): Array<{pid: number; command: string; leaf: boolean}> {
  const all = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
        return {command: readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' '), pid: Number(p), ppid: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])}
      } catch {
        return undefined
      }
    })
    .filter((p) => p !== undefined)
  const found: Array<{pid: number; command: string; leaf: boolean}> = []
  const walk = (parent: number) => {
    for (const p of all.filter((q) => q.ppid === parent)) {
      found.push({command: p.command, leaf: !all.some((q) => q.ppid === p.pid), pid: p.pid})
      walk(p.pid)
    }
  }
  walk(pid)
  return found
}

/** Notifications from a real daemon to a real HTTP receiver and a real SMTP server (STARTTLS, AUTH) on loopback. */
describe('daemon notifications: webhooks (Slack, signed generic), email, outbox, stall', function () {
  this.timeout(60_000)
  const suite = daemonSuite('h2k-notify-')
  const {daemons} = suite
  let cert: ReturnType<typeof makeCertificate>
  let hooks: WebhookReceiver
  let smtp: SmtpReceiver
  before(() => {
    cert = makeCertificate(suite.dir)
  })
  beforeEach(async () => {
    hooks = await WebhookReceiver.start({'/generic': SECRET})
    smtp = await SmtpReceiver.start({cert: cert.cert, key: cert.key, password: PASSWORD, user: USER})
  })
  afterEach(async () => {
    await hooks.close()
    await smtp.close()
  })

  const setup = (name: string, notifications: string, extra = 'retry_policy:\n  enabled: false\n') => {
    const base = join(suite.dir, name)
    mkdirSync(join(base, 'queue'), {recursive: true})
    writeFileSync(join(base, 'generic.secret'), `${SECRET}\n`, {mode: 0o600})
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, `command: daemon\nwatch_dir: queue\noutput_dir: out\nlog_file: log/daemon.log\nverbose: 2\n${extra}notifications:\n${notifications}`)
    return {base, config, out: join(base, 'out'), watch: join(base, 'queue')}
  }
  const generic = (path = '/generic', extra = '') => `  webhooks:\n    - url: ${hooks.url(path)}\n      type: generic\n      secret_file: generic.secret\n${extra}`
  const email = () =>
    `  email_enabled: true\n  smtp_server: 127.0.0.1\n  smtp_port: ${smtp.port}\n  smtp_use_tls: true\n  smtp_username: ${USER}\n  smtp_password: "${PASSWORD}"\n  smtp_tls_ca_file: ${cert.certFile}\n  email_from: hyper2kvm@test.local\n  email_to: [ops@test.local, oncall@test.local]\n  email_subject_prefix: "[H2K-TEST]"\n`

  it('a failing drop: a Slack-format webhook, a signed generic webhook and an email over STARTTLS+AUTH; no secret anywhere', async () => {
    const t = setup('t1', `  enabled: true\n  webhook_url: ${hooks.url('/slack')}\n  webhook_type: slack\n  webhook_headers:\n    Authorization: "Bearer ${TOKEN}"\n${generic()}${email()}`)
    const d = await startDaemon(['--config', t.config], t.out)
    daemons.push(d)
    writeFileSync(join(t.watch, 'bad.vmdk'), 'test\n')
    const argvHits: string[] = []
    await until('slack, generic and mail', () => {
      for (const needle of [PASSWORD, SECRET, TOKEN]) argvHits.push(...argvContaining(needle))
      return hooks.on('/slack').length > 0 && hooks.on('/generic').length > 0 && smtp.mails.length > 0
    }, 30_000, d)
    assert.deepEqual(argvHits, [], 'no secret in the argv of any process')

    const slack = hooks.on('/slack')[0]!
    assert.equal(slack.headers.authorization, `Bearer ${TOKEN}`)
    assert.equal(slack.headers['x-hyper2kvm-event'], 'conversion_failure')
    const attachment = slack.json.attachments[0]
    assert.deepEqual([attachment.color, attachment.title, attachment.text, attachment.footer], ['danger', '❌ Conversion Failed', 'Failed to convert bad.vmdk', 'Hyper2KVM Daemon'])
    assert.ok(Math.abs(attachment.ts - Date.now() / 1000) < 60)
    const field = (title: string) => attachment.fields.find((f: {title: string}) => f.title === title)?.value
    assert.equal(field('Filename'), 'bad.vmdk')
    assert.match(field('Error'), /\(H2K_INPUT_UNRECOGNIZED\)$/)
    assert.equal(field('Retry'), 'none (permanent error)')
    assert.ok(field('Suggestion'))

    const signed = hooks.on('/generic')[0]!
    assert.equal(signed.signatureValid, true, 'the receiver verified the HMAC signature')
    assert.match(String(signed.headers['x-hyper2kvm-delivery']), /^[0-9a-f-]{36}$/)
    assert.equal(signed.json.event, 'conversion_failure')
    assert.equal(signed.json.details.filename, 'bad.vmdk')
    assert.equal(signed.json.details.error_code, 'H2K_INPUT_UNRECOGNIZED')
    assert.equal(signed.json.details.file_size_mb, 0)
    assert.equal(typeof signed.json.details.error, 'string')
    assert.equal(signed.json.details.job_id, jobOf(t.out, 'bad.vmdk')!.id)

    const mail = smtp.mails[0]!
    assert.equal(mail.secure, true, 'STARTTLS was used')
    assert.equal(mail.user, USER)
    assert.equal(mail.from, 'hyper2kvm@test.local')
    assert.deepEqual(mail.to, ['ops@test.local', 'oncall@test.local'])
    assert.equal(mail.subject, '[H2K-TEST] Conversion Failed: bad.vmdk')
    assert.match(mail.text, /^Failed to convert bad\.vmdk$/m)
    assert.match(mail.text, /^Error: .*\(H2K_INPUT_UNRECOGNIZED\)$/m)
    assert.match(mail.text, /^Retry: none \(permanent error\)$/m)
    assert.match(mail.text, /^error_code: H2K_INPUT_UNRECOGNIZED$/m)

    await until('all delivered in the outbox', () => outbox(t.out).length === 3 && outbox(t.out).every((r) => r.status === 'delivered'), 10_000, d)
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
    assert.match(d.log(), /WARN notify:config .*notifications\.smtp_password/)
    for (const needle of [PASSWORD, SECRET, TOKEN]) {
      assert.ok(!d.log().includes(needle), `${needle} in stderr`)
      assert.deepEqual(filesContaining(join(t.base, 'log'), needle), [], `${needle} in the log file`)
      assert.deepEqual(filesContaining(join(t.watch, '.errors'), needle), [], `${needle} in an error file`)
      assert.deepEqual(filesContaining(t.out, needle), [], `${needle} in the output dir (store, outbox, stats)`)
    }
    assert.ok(readdirSync(join(t.watch, '.errors')).includes('bad.vmdk.error.json'))
  })

  it('a retry then success: a failure notice with retry info, then the retry-success message (success itself off)', async () => {
    const raw = makePatternedRaw(join(suite.dir, 'source.raw'))
    const t = setup('t2', `  enabled: true\n  notify_on_success: false\n${generic()}`, 'fix: false\nretry_policy:\n  max_retries: 3\n  retry_delay: 0.5\n  backoff_multiplier: 2\n')
    mkdirSync(t.out, {recursive: true})
    // A file where the day's output directory should be: writing fails (H2K_OUTPUT_FAILED, retryable).
    writeFileSync(join(t.out, today()), 'in the way')
    const d = await startDaemon(['--config', t.config], t.out)
    daemons.push(d)
    execFileSync('cp', ['--sparse=always', raw, join(t.watch, 'eps.raw')])
    await until('the retry notice', () => hooks.on('/generic').length >= 1, 30_000, d)
    execFileSync('rm', [join(t.out, today())])
    await until('succeeded', () => jobOf(t.out, 'eps.raw', 'succeeded'), 30_000, d)
    await until('the retry-success notice', () => hooks.on('/generic').some((r) => r.json.event === 'retry_success'), 10_000, d)
    const events = hooks.on('/generic').map((r) => r.json)
    const failure = events[0]
    assert.equal(failure.event, 'conversion_failure')
    assert.equal(failure.details.error_code, 'H2K_OUTPUT_FAILED')
    assert.deepEqual([failure.details.retry_count, failure.details.max_retries, failure.details.next_retry_minutes], [1, 3, 0])
    const recovered = events.find((e) => e.event === 'retry_success')
    assert.equal(recovered.details.previous_error_code, 'H2K_OUTPUT_FAILED')
    assert.ok(recovered.details.attempt >= 2)
    assert.equal(recovered.details.filename, 'eps.raw')
    assert.ok(!events.some((e) => e.event === 'conversion_success'), 'notify_on_success: false')
    assert.ok(hooks.on('/generic').every((r) => r.signatureValid === true))
  })

  it('the outbox survives a restart while the receiver is down (503), and the alert arrives after it; a 4xx receiver is not retried', async () => {
    hooks.reply = ({path}) => ({status: path === '/generic' ? 503 : 400})
    const t = setup('t3', `  enabled: true\n  delivery_retry_delay: 0.05\n  webhook_url: ${hooks.url('/refusing')}\n${generic()}`)
    const d = await startDaemon(['--config', t.config], t.out)
    daemons.push(d)
    writeFileSync(join(t.watch, 'bad.vmdk'), 'test\n')
    await until('two 503s', () => hooks.on('/generic').length >= 2, 30_000, d)
    // The 400 is another channel's: its row is given up on its own time, before the stop (which aborts what is in flight).
    await until('the 400 given up', () => outbox(t.out).some((r) => r.status === 'failed'), 10_000, d)
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
    const pending = outbox(t.out).find((r) => r.status === 'pending')
    assert.ok(pending, JSON.stringify(outbox(t.out)))
    assert.equal(outbox(t.out).find((r) => r.status === 'failed')?.attempts, 1, 'the 400 was given up after one attempt')
    assert.equal(hooks.on('/refusing').length, 1)
    assert.match(d.log(), /ERROR notify:failed .*permanent=true .*HTTP 400: not retried/)

    hooks.reply = () => ({status: 200})
    const again = await startDaemon(['--config', t.config], t.out)
    daemons.push(again)
    await until('delivered after the restart', () => hooks.on('/generic').some((r) => r.status === 200), 30_000, again)
    const delivered = hooks.on('/generic').find((r) => r.status === 200)!
    assert.equal(delivered.headers['x-hyper2kvm-delivery'], pending.id, 'the same message (its delivery id)')
    assert.equal(delivered.json.details.filename, 'bad.vmdk')
    assert.equal(delivered.signatureValid, true)
    await until('the row delivered', () => outbox(t.out).find((r) => r.id === pending.id)?.status === 'delivered', 10_000, again)
    assert.equal(hooks.on('/refusing').length, 1, 'the permanent failure is not resumed')
    assert.match(again.log(), /INFO notify:start .*pending=1/)
  })

  it('a job that stops moving: daemon:stalled is logged and notified once, and the job finishes once it moves again', async () => {
    const t = setup('t4', `  enabled: true\n  notify_on_stall: true\n  stall_check_interval: 1\n${generic()}`, 'fix: false\ncompress: true\n')
    const big = join(t.base, 'big.raw')
    execFileSync('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', 'count=128', 'status=none'])
    const d = await startDaemon(['--config', t.config], t.out)
    daemons.push(d)
    execFileSync('mv', [big, join(t.watch, 'big.raw')])
    // Freeze the job's copy (qemu-img convert: seconds long) as soon as it exists: no progress any more. A
    // short-lived qemu-img (info, check) may be gone between the listing and the signal: then look again.
    const frozen = await until(
      'a qemu-img convert, frozen',
      () => {
        const copy = descendants(d.child.pid!).find((p) => p.leaf && /qemu-img\b.*\bconvert\b/.test(p.command))
        if (!copy) return undefined
        try {
          process.kill(copy.pid, 'SIGSTOP')
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ESRCH') return undefined
          throw error
        }
        return copy
      },
      30_000,
      d,
      5,
    )
    let stalls: Array<{json: any}>
    let logged: number
    try {
      await until('the stall notice', () => hooks.on('/generic').some((r) => r.json.event === 'daemon_stall'), 15_000, d)
      // Frozen for several more intervals: still one stall (a stall after it moves again would be a new one).
      await sleep(2500)
      stalls = hooks.on('/generic').filter((r) => r.json.event === 'daemon_stall')
      logged = (d.log().match(/WARN daemon:stalled /g) ?? []).length
    } finally {
      process.kill(frozen.pid, 'SIGCONT')
    }
    assert.equal(stalls.length, 1, 'once per stall')
    assert.equal(logged, 1)
    assert.equal(stalls[0]!.json.details.currently_processing, 1)
    assert.equal(stalls[0]!.json.details.queue_depth, 0)
    await until('big done', () => jobOf(t.out, 'big.raw', 'succeeded'), 40_000, d)
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
  })

  it('notify test: ok through every channel; failures (bad SMTP password, a 4xx webhook) exit 1 with the reason and no secret', async () => {
    const t = setup('t5', `  enabled: true\n  webhook_url: ${hooks.url('/slack')}\n  webhook_type: slack\n${generic()}${email()}`)
    const ok = await runCli(['notify', 'test', '--config', t.config, '--json'])
    assert.equal(ok.code, 0, ok.stderr + ok.stdout)
    assert.equal(ok.json.ok, true)
    assert.deepEqual(ok.json.channels.map((c: {ok: boolean}) => c.ok), [true, true, true])
    assert.equal(hooks.on('/slack')[0]!.json.attachments[0].title, 'ℹ️ Test Notification')
    assert.equal(hooks.on('/generic')[0]!.json.event, 'test')
    assert.equal(hooks.on('/generic')[0]!.signatureValid, true)
    assert.equal(smtp.mails[0]!.subject, '[H2K-TEST] Test Notification')

    const wrong = 'wrong-pass-0f3c99'
    writeFileSync(t.config, readFileSync(t.config, 'utf8').replace(PASSWORD, wrong))
    hooks.reply = ({path}) => ({status: path === '/slack' ? 404 : 200})
    const failed = await runCli(['notify', 'test', '--config', t.config])
    assert.equal(failed.code, 1, failed.stderr + failed.stdout)
    assert.match(failed.stdout, /^FAILED {2}slack webhook 127\.0\.0\.1:\d+ {2}HTTP 404$/m)
    assert.match(failed.stdout, /^ok {6}generic webhook /m)
    assert.match(failed.stdout, /^FAILED {2}email 127\.0\.0\.1:\d+ \(starttls\) {2}EAUTH 535/m)
    assert.deepEqual(smtp.authFailures, [USER])
    for (const needle of [wrong, SECRET]) assert.ok(!(failed.stdout + failed.stderr).includes(needle), needle)
  })

  it('email security: implicit TLS (smtp_security: tls) delivers; a server without STARTTLS is refused before AUTH (no plain-text fallback)', async () => {
    const implicit = await SmtpReceiver.start({cert: cert.cert, key: cert.key, password: PASSWORD, secure: true, user: USER})
    const noStarttls = await SmtpReceiver.start({cert: cert.cert, key: cert.key, noStarttls: true, password: PASSWORD, user: USER})
    try {
      const mailOnly = (port: number, security: string) =>
        `  enabled: true\n  email_enabled: true\n  smtp_server: 127.0.0.1\n  smtp_port: ${port}\n  ${security}\n  smtp_username: ${USER}\n  smtp_password: "${PASSWORD}"\n  smtp_tls_ca_file: ${cert.certFile}\n  email_from: a@test.local\n  email_to: b@test.local\n`
      const tls = setup('t6', mailOnly(implicit.port, 'smtp_security: tls'))
      const sent = await runCli(['notify', 'test', '--config', tls.config, '--json'])
      assert.equal(sent.code, 0, sent.stdout + sent.stderr)
      assert.equal(implicit.mails.length, 1)
      assert.deepEqual(implicit.authAttempts, [{secure: true, user: USER}])

      const plain = setup('t7', mailOnly(noStarttls.port, 'smtp_use_tls: true'))
      const refused = await runCli(['notify', 'test', '--config', plain.config, '--json'])
      assert.equal(refused.code, 1, refused.stdout + refused.stderr)
      assert.equal(refused.json.channels[0].ok, false)
      assert.match(refused.json.channels[0].detail, /STARTTLS/i)
      assert.deepEqual(noStarttls.authAttempts, [], 'the password was never offered over plain text')
      assert.equal(noStarttls.mails.length, 0)

      // Without the CA the self-signed certificate is refused: the check is on by default.
      writeFileSync(tls.config, readFileSync(tls.config, 'utf8').replace(/ {2}smtp_tls_ca_file: .*\n/, ''))
      const untrusted = await runCli(['notify', 'test', '--config', tls.config, '--json'])
      assert.equal(untrusted.code, 1, untrusted.stdout + untrusted.stderr)
      assert.match(untrusted.json.channels[0].detail, /self[- ]signed|certificate/i)
      assert.equal(implicit.mails.length, 1)
    } finally {
      await implicit.close()
      await noStarttls.close()
    }
  })
})
