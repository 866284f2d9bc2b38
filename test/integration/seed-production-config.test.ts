import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {jobOf, startDaemon, today, until} from '../helpers/daemon-process.js'
import {daemonSuite} from '../helpers/daemon-suite.js'
import {parseExposition, promtoolCheck, request} from '../helpers/http-scrape.js'
import {makePatternedRaw} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'
import {argvContaining, filesContaining} from '../helpers/secret-leaks.js'
import {makeCertificate, SmtpReceiver} from '../helpers/smtp-receiver.js'
import {WebhookReceiver} from '../helpers/webhook-receiver.js'

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'seed-configs', 'production.yaml')
const PASSWORD = 'seed-smtp-pass-51d7a0'
const SECRET = 'seed-hook-secret-9be24c'
const VSPHERE = 'CHANGE_ME'
const USER = 'automation'

const jq = (filter: string, file: string): string => execFileSync('jq', ['-r', filter, file], {encoding: 'utf8'}).trim()

/**
 * The "done when": the seed's production configuration, paths moved, its webhook pointed at a
 * loopback receiver and the seed's email keys at a loopback SMTP server, runs as `hyper2kvm --config FILE`;
 * a failing drop is reported through Slack, a signed generic webhook and email; /metrics scrapes; health
 * answers; JSON log lines parse; no secret is anywhere; the seed's jq one-liners and healthcheck work.
 */
describe('the seed production configuration runs unchanged (paths moved, receivers on loopback)', function () {
  this.timeout(120_000)
  // One daemon serves the tests in turn: it lives until the suite ends.
  const suite = daemonSuite('h2k-seed-prod-', {killAfter: 'all'})
  const {daemons} = suite
  let hooks: WebhookReceiver
  let smtp: SmtpReceiver
  before(async () => {
    const dir = suite.dir
    const cert = makeCertificate(suite.dir)
    hooks = await WebhookReceiver.start({'/generic': SECRET})
    smtp = await SmtpReceiver.start({cert: cert.cert, key: cert.key, password: PASSWORD, user: USER})
    // The seed text, its paths moved under the temp dir; ours beside the seed's keys: email (the seed's own
    // email keys), a signed generic webhook, the metrics listener, JSON logs.
    const seed = readFileSync(FIXTURE, 'utf8')
      .replaceAll('/var/lib/hyper2kvm', join(suite.dir, 'lib'))
      .replaceAll('/var/log/hyper2kvm', join(suite.dir, 'log'))
      .replace('"YOUR_WEBHOOK_URL"', `"${hooks.url('/slack')}"`)
      .replace(
        '  notify_on_stall: true\n',
        [
          '  notify_on_stall: true',
          '  email_enabled: true',
          '  smtp_server: "127.0.0.1"',
          `  smtp_port: ${smtp.port}`,
          '  smtp_use_tls: true',
          `  smtp_username: "${USER}"`,
          `  smtp_password: "${PASSWORD}"`,
          '  email_from: "hyper2kvm@company.com"',
          '  email_to: "oncall@company.com"',
          `  smtp_tls_ca_file: ${cert.certFile}`,
          '  webhooks:',
          `    - url: ${hooks.url('/generic')}`,
          '      type: generic',
          '      secret_file: generic.secret',
          '',
        ].join('\n'),
      )
    assert.ok(seed.includes('smtp_server') && seed.includes(hooks.url('/slack')), 'the fixture changed shape')
    mkdirSync(join(suite.dir, 'etc'), {recursive: true})
    writeFileSync(join(suite.dir, 'etc', 'generic.secret'), `${SECRET}\n`, {mode: 0o600})
    writeFileSync(join(suite.dir, 'etc', 'daemon.yaml'), `${seed}metrics:\n  enabled: true\n  port: 0\nlog_format: json\n`, {mode: 0o600})
    // The seed's step 3: the directories exist before the daemon starts.
    for (const sub of ['queue', 'output', 'work']) mkdirSync(join(suite.dir, 'lib', sub), {recursive: true})
  })
  after(async () => {
    await hooks?.close()
    await smtp?.close()
  })

  it('starts as `hyper2kvm --config FILE`; a failed and a converted drop are notified, scraped, logged and summarised', async () => {
    const config = join(suite.dir, 'etc', 'daemon.yaml')
    const queue = join(suite.dir, 'lib', 'queue')
    const out = join(suite.dir, 'lib', 'output')
    const logFile = join(suite.dir, 'log', 'daemon.log')
    const d = await startDaemon(['--config', config], out, undefined, {bare: true})
    daemons.push(d)
    const argvHits: string[] = []
    const scanArgv = () => {
      for (const needle of [PASSWORD, SECRET, VSPHERE]) argvHits.push(...argvContaining(needle))
    }
    makePatternedRaw(join(suite.dir, 'good.raw'))
    execFileSync('cp', ['--sparse=always', join(suite.dir, 'good.raw'), join(queue, 'vm-001.raw')])
    writeFileSync(join(queue, 'vm-123.vmdk'), 'test\n')
    await until('both jobs settled and the three notifications in', () => {
      scanArgv()
      return jobOf(out, 'vm-001.raw', 'succeeded') && jobOf(out, 'vm-123.vmdk', 'failed') && hooks.on('/slack').length > 0 && hooks.on('/generic').length > 0 && smtp.mails.length > 0
    }, 90_000, d)
    assert.deepEqual(argvHits, [], 'no secret in the argv of any process')

    // Slack, in the seed's attachment format.
    const slack = hooks.on('/slack')[0]!.json as {attachments: Array<{color: string; title: string; fields: Array<{title: string; value: string}>; footer: string}>}
    assert.equal(slack.attachments[0]!.color, 'danger')
    assert.match(slack.attachments[0]!.title, /Conversion Failed/)
    assert.equal(slack.attachments[0]!.footer, 'Hyper2KVM Daemon')
    assert.ok(slack.attachments[0]!.fields.some((f) => f.title === 'Filename' && f.value === 'vm-123.vmdk'))
    // The generic webhook: the seed's payload, signed; the receiver checks the signature itself.
    const generic = hooks.on('/generic')[0]!
    assert.equal(generic.signatureValid, true)
    assert.equal(generic.json.event, 'conversion_failure')
    assert.equal(generic.json.details.filename, 'vm-123.vmdk')
    assert.equal(generic.json.details.error_code, 'H2K_INPUT_UNRECOGNIZED')
    // notify_on_success: false (the seed's): the converted disk sent nothing.
    assert.ok(hooks.requests.every((r) => r.json?.event !== 'conversion_success'))
    // The email, over STARTTLS with the seed's subject prefix.
    assert.match(smtp.mails[0]!.subject, /^\[Hyper2KVM\] /)
    assert.match(smtp.mails[0]!.text, /vm-123\.vmdk/)

    // The metrics listener (port 0: the port it took is in its log line) and health.
    const lines = readFileSync(logFile, 'utf8').trimEnd().split('\n')
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
    for (const r of records) for (const key of ['level', 'time', 'event']) assert.ok(key in r, `${key} in ${JSON.stringify(r)}`)
    assert.ok(records.some((r) => r.event === 'job:failed' && typeof r.job_id === 'string' && r.file === 'vm-123.vmdk'))
    assert.equal(records.filter((r) => r.event === 'config:not-used-yet' && String(r.key).startsWith('vsphere')).length, 1, 'vsphere is accepted and said to be unused, once')
    const port = Number(records.find((r) => r.event === 'http:listening')!.port)
    const scrape = await request(port, '/metrics')
    assert.equal(scrape.status, 200)
    const samples = parseExposition(scrape.body)
    assert.equal(samples.get('hyper2kvm_jobs_total{status="failed"}'), 1)
    assert.equal(samples.get('hyper2kvm_jobs_total{status="succeeded"}'), 1)
    assert.equal(samples.get('hyper2kvm_errors_total{code="H2K_INPUT_UNRECOGNIZED"}'), 1)
    const promtool = promtoolCheck(scrape.body)
    assert.ok(promtool.ok, promtool.output)
    const health = await request(port, '/api/v1/health')
    assert.equal(health.status, 200)
    assert.equal(JSON.parse(health.body).status, 'ok')

    // The seed's jq one-liners on our files.
    const stats = join(out, '.daemon', 'stats.json')
    await until('stats.json with both jobs', () => jq('.total_processed', stats) === '1' && jq('.total_failed', stats) === '1', 15_000, d)
    assert.equal(jq('.success_rate // 100', stats), '50')
    assert.equal(jq('.current_queue_depth', stats), '0')
    assert.match(jq('.average_processing_time_seconds', stats), /^\d+(\.\d+)?$/)
    const live = await runCli(['ctl', 'stats', '--config', config, '--json'])
    assert.equal(live.code, 0, live.stderr)
    assert.equal(execFileSync('jq', ['-r', '.stats.success_rate'], {encoding: 'utf8', input: live.stdout}).trim(), '50')
    const errorFile = join(queue, '.errors', 'vm-123.vmdk.error.json')
    assert.equal(jq('.error_code', errorFile), 'H2K_INPUT_UNRECOGNIZED')
    assert.notEqual(jq('.suggestion', errorFile), 'null')
    assert.match(jq('.system_info.disk_space_free_gb', errorFile), /^\d+(\.\d+)?$/)
    assert.equal(jq('.retry_info.next_retry_at', errorFile), 'null')
    // The seed's healthcheck thresholds: 50 % is below 80 (WARNING, exit 1), and critical below 60 (exit 2).
    const warning = await runCli(['ctl', 'health', '--config', config])
    assert.equal(warning.code, 1, `${warning.stdout}${warning.stderr}`)
    assert.match(warning.stdout, /^WARNING: .*50/)
    assert.equal((await runCli(['ctl', 'health', '--config', config, '--critical-below', '60'])).code, 2)

    // No secret anywhere a user (or an attacker reading what we write) can look.
    const shown = await runCli(['config', 'show', '--config', config])
    const shownJson = await runCli(['config', 'show', '--config', config, '--json'])
    for (const secret of [PASSWORD, SECRET, VSPHERE]) {
      assert.deepEqual(filesContaining(out, secret), [], `${secret} under output_dir`)
      assert.deepEqual(filesContaining(queue, secret), [], `${secret} under watch_dir (error files)`)
      assert.deepEqual(filesContaining(join(suite.dir, 'log'), secret), [], `${secret} in the log`)
      assert.ok(!d.stderr().includes(secret), `${secret} on stderr`)
      assert.ok(!shown.stdout.includes(secret) && !shownJson.stdout.includes(secret), `${secret} in config show`)
    }
    assert.match(shown.stdout, /\[REDACTED\]/)
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
    assert.deepEqual(readdirSync(join(queue, '.processed', today())), ['vm-001.raw'])
  })

  it('the seed text as printed (placeholder webhook_url, vsphere password) starts, says what it does not use, and stops', async () => {
    // Paths moved, nothing else: the placeholder webhook is disabled with a logged error, not a refusal to start.
    const config = join(suite.dir, 'etc', 'as-printed.yaml')
    writeFileSync(config, readFileSync(FIXTURE, 'utf8').replaceAll('/var/lib/hyper2kvm', join(suite.dir, 'printed')).replaceAll('/var/log/hyper2kvm', join(suite.dir, 'printed-log')), {mode: 0o600})
    for (const sub of ['queue', 'output', 'work']) mkdirSync(join(suite.dir, 'printed', sub), {recursive: true})
    const d = await startDaemon(['--config', config], join(suite.dir, 'printed', 'output'), undefined, {bare: true})
    daemons.push(d)
    const log = join(suite.dir, 'printed-log', 'daemon.log')
    await until('the start-up notices', () => {
      const text = readFileSync(log, 'utf8')
      return /webhook_url is not an http\(s\) URL.*DISABLED/.test(text) && /config:not-used-yet.*vsphere/.test(text)
    }, 15_000, d)
    assert.ok(!readFileSync(log, 'utf8').includes(VSPHERE), 'the vsphere password is not logged')
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
  })
})
