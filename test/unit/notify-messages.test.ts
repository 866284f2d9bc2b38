import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import type {DaemonEvent, ErrorInfo, JobInfo} from '../../src/daemon/daemon-events.js'
import {loadDaemonConfig} from '../../src/daemon/config.js'
import type {H2KError} from '@hyper2kvm/plugin-api'
import {emailBody, emailSubject} from '../../src/notify/email-message.js'
import {noticeFor} from '../../src/notify/notice.js'
import {type NotificationSettings, parseNotificationSettings} from '../../src/notify/settings.js'
import {discordPayload, genericPayload, slackPayload} from '../../src/notify/webhook-payloads.js'
import {parse} from 'yaml'

import {schemaValidator} from '../../src/jobs/schemas.js'
import {signatureHeaders} from '../../src/delivery/sign-webhook.js'
import {redactSecrets} from '../../src/secrets/resolve-secret.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const job: JobInfo = {fileType: 'vmdk', filename: 'vm-123.vmdk', id: 'j-1', intakeId: 'j-1', name: 'vm-123', origin: 'drop', sizeBytes: 51200 * 1048576}
const error: ErrorInfo = {code: 'H2K_TOOL_FAILED', message: 'Connection timeout', permanent: false, phase: 'convert', suggestion: 'Re-run with --log-level debug.'}
const all: NotificationSettings = {delivery: {}, enabled: true, notifyOnFailure: true, notifyOnStall: true, notifyOnSuccess: true, stallCheckInterval: 60, warnings: [], webhooks: []}
const at = new Date('2026-01-17T14:30:00Z')

describe('notification messages and settings', () => {
  it('a retry is a failure notice with the seed\'s fields: Slack attachment, generic details, email', () => {
    const event: DaemonEvent = {at, attempt: 1, delayMs: 300_000, error, job, maxRetries: 3, nextRetryAt: new Date(at.getTime() + 300_000), type: 'job:retry'}
    const notice = noticeFor(event, all)!
    assert.equal(notice.event, 'conversion_failure')
    const slack = slackPayload(notice) as {attachments: Array<Record<string, any>>}
    const a = slack.attachments[0]!
    assert.deepEqual([a.color, a.title, a.text, a.footer, a.ts], ['danger', '❌ Conversion Failed', 'Failed to convert vm-123.vmdk', 'Hyper2KVM Daemon', 1768660200])
    assert.deepEqual(a.fields[0], {short: true, title: 'Filename', value: 'vm-123.vmdk'})
    assert.ok(a.fields.some((f: any) => f.title === 'Size' && f.value === '50.0GB'))
    assert.ok(a.fields.some((f: any) => f.title === 'Retry' && f.value === '1/3 (next retry in 5.0 minutes)'))
    assert.ok(a.fields.some((f: any) => f.title === 'Error' && f.value === 'Connection timeout (H2K_TOOL_FAILED)'))
    const generic = genericPayload(notice) as {event: string; timestamp: string; details: Record<string, unknown>}
    assert.equal(generic.event, 'conversion_failure')
    assert.equal(generic.timestamp, '2026-01-17T14:30:00.000Z')
    for (const [k, v] of Object.entries({error: 'Connection timeout', error_code: 'H2K_TOOL_FAILED', file_size_mb: 51200, filename: 'vm-123.vmdk', job_id: 'j-1', max_retries: 3, next_retry_minutes: 5, phase: 'convert', retry_count: 1, suggestion: 'Re-run with --log-level debug.'})) {
      assert.deepEqual(generic.details[k], v, k)
    }
    assert.equal(emailSubject('[Hyper2KVM]', notice), '[Hyper2KVM] Conversion Failed: vm-123.vmdk')
    assert.match(emailBody(notice), /^Retry: 1\/3 \(next retry in 5\.0 minutes\)$/m)
    const discord = discordPayload(notice) as {embeds: Array<Record<string, any>>; allowed_mentions: unknown}
    assert.deepEqual(discord.allowed_mentions, {parse: []})
    assert.equal(discord.embeds[0]!.footer.text, 'Hyper2KVM Daemon')
  })

  it('which events are sent: success only with notify_on_success, retry success with notify_on_failure, stall with notify_on_stall', () => {
    const success: DaemonEvent = {at, attempt: 1, durationMs: 272_000, job, maxRetries: 3, outputBytes: 1, outputPath: '/out/2026-01-17/vm-123', type: 'job:succeeded'}
    const recovered: DaemonEvent = {...success, attempt: 2, previousError: error}
    const stall: DaemonEvent = {at, idleSeconds: 3600, queued: 5, running: 0, type: 'daemon:stalled'}
    const failureOnly = {...all, notifyOnStall: false, notifyOnSuccess: false}
    assert.equal(noticeFor(success, failureOnly), undefined)
    assert.equal(noticeFor(success, all)!.text, 'vm-123.vmdk → /out/2026-01-17/vm-123')
    assert.ok(noticeFor(success, all)!.lines.some((l) => l.label === 'Duration' && l.value === '4m 32s'))
    const retry = noticeFor(recovered, failureOnly)!
    assert.equal(retry.event, 'retry_success')
    assert.equal(retry.text, 'vm-123.vmdk succeeded on attempt 2/4')
    assert.equal(retry.details.previous_error, 'Connection timeout')
    assert.equal(noticeFor(recovered, {...all, notifyOnFailure: false, notifyOnSuccess: false}), undefined)
    assert.equal(noticeFor(stall, failureOnly), undefined)
    const stalled = noticeFor(stall, all)!
    assert.equal(stalled.text, 'No files processed in 60 minutes')
    assert.deepEqual([stalled.details.queue_depth, stalled.details.currently_processing], [5, 0])
    assert.equal(noticeFor({at, job, type: 'job:queued'}, all), undefined)
  })

  it('a hostile dropped name is escaped, bounded, and cannot become a Slack link or a Discord mention', () => {
    const hostile = {...job, filename: `<!channel> @everyone\n\u001b[31mx${'a'.repeat(500)}.vmdk`}
    const notice = noticeFor({at, attempt: 1, durationMs: 0, error: {...error, permanent: true}, job: hostile, maxRetries: 3, retrying: false, type: 'job:failed'}, all)!
    assert.ok(!notice.details.filename!.includes('\n') && !notice.details.filename!.includes('\u001b'))
    assert.ok(notice.details.filename!.length <= 200)
    const text = JSON.stringify(slackPayload(notice))
    assert.ok(!text.includes('<!channel>') && text.includes('&lt;!channel&gt;'))
    assert.ok(notice.lines.some((l) => l.label === 'Retry' && l.value === 'none (permanent error)'))
    assert.ok(!emailSubject('[H]', notice).includes('\n'))
  })

  it('settings: the seed defaults; smtp_security from smtp_use_tls and the port; secrets resolved and redacted; bad values refused', async () => {
    const {cleanup, dir} = makeTempDir()
    try {
      const none = await parseNotificationSettings(undefined, dir)
      assert.deepEqual([none.enabled, none.notifyOnSuccess, none.notifyOnFailure, none.notifyOnStall, none.stallCheckInterval, none.webhooks.length], [false, false, true, true, 3600, 0])
      writeFileSync(join(dir, 'secret'), 'file-secret-9d2e\n', {mode: 0o600})
      const s = await parseNotificationSettings(
        {email_enabled: true, email_from: 'h@x', email_to: 'a@x, b@x', smtp_password: 'pw-plain-77aa', smtp_server: 'mail', smtp_username: 'u', webhook_headers: {Authorization: 'Bearer tok-31f0'}, webhook_secret_file: 'secret', webhook_url: 'https://hooks.example/T/B/X'},
        dir,
      )
      assert.equal(s.webhooks[0]!.secret, 'file-secret-9d2e')
      assert.equal(s.webhooks[0]!.type, 'generic')
      assert.deepEqual([s.email!.security, s.email!.port, s.email!.to, s.email!.subjectPrefix], ['starttls', 587, ['a@x', 'b@x'], '[Hyper2KVM]'])
      assert.ok(s.warnings.some((w) => w.includes('notifications.smtp_password')) && !s.warnings.join().includes('pw-plain-77aa'))
      assert.equal(redactSecrets('x pw-plain-77aa Bearer tok-31f0 file-secret-9d2e'), 'x [REDACTED] [REDACTED] [REDACTED]')
      assert.equal(redactSecrets('token=tok-31f0'), 'token=[REDACTED]')
      assert.equal((await parseNotificationSettings({email_enabled: true, email_from: 'a', email_to: 'b', smtp_port: 465, smtp_server: 'm'}, dir)).email!.security, 'tls')
      assert.equal((await parseNotificationSettings({email_enabled: true, email_from: 'a', email_to: 'b', smtp_server: 'm', smtp_use_tls: false}, dir)).email!.security, 'none')
      await assert.rejects(parseNotificationSettings({email_enabled: true, smtp_server: 'm'}, dir), (e: H2KError) => e.code === 'H2K_JOB_INVALID' && /email_from, email_to/.test(e.message))
      await assert.rejects(parseNotificationSettings({webhooks: [{url: 'file:///etc/passwd'}]}, dir), /only http and https/)
      // The seed's own key with its placeholder (the production config ships "YOUR_WEBHOOK_URL"): loads, that webhook off, said loudly.
      const placeholder = await parseNotificationSettings({enabled: true, webhook_type: 'slack', webhook_url: 'YOUR_WEBHOOK_URL'}, dir)
      assert.deepEqual(placeholder.webhooks, [])
      assert.ok(placeholder.warnings.some((w) => /webhook_url is not an http\(s\) URL.*DISABLED/.test(w) && !w.includes('YOUR_WEBHOOK_URL')), placeholder.warnings.join('\n'))
      // The schema refuses before: a daemon config with a non-http URL in webhooks: or an unknown key does not load.
      writeFileSync(join(dir, 'd.yaml'), 'command: daemon\nwatch_dir: q\noutput_dir: o\nnotifications:\n  webhooks:\n    - url: "ftp://x/y"\n')
      await assert.rejects(loadDaemonConfig({config: join(dir, 'd.yaml')}), (e: H2KError) => e.code === 'H2K_JOB_INVALID')
      writeFileSync(join(dir, 'd.yaml'), 'command: daemon\nwatch_dir: q\noutput_dir: o\nnotifications:\n  webhook_typo: slack\n')
      await assert.rejects(loadDaemonConfig({config: join(dir, 'd.yaml')}), (e: H2KError) => e.code === 'H2K_JOB_INVALID' && /webhook_typo/.test(e.message))
    } finally {
      cleanup()
    }
  })

  it('the seed\'s production notifications block and its email example load as printed', async () => {
    const {cleanup, dir} = makeTempDir()
    try {
      const seed = `command: daemon
daemon: true
watch_dir: q
output_dir: o
notifications:
  enabled: true
  webhook_url: "https://hooks.slack.com/services/YOUR/WEBHOOK/URL"
  webhook_type: "slack"
  webhook_headers:
    Authorization: "Bearer YOUR_TOKEN"
    X-Custom-Header: "value"
  notify_on_success: false
  notify_on_failure: true
  notify_on_stall: true
  stall_check_interval: 3600
  email_enabled: true
  smtp_server: "smtp.gmail.com"
  smtp_port: 587
  smtp_use_tls: true
  smtp_username: "your-email@gmail.com"
  smtp_password: "your-app-password"
  email_from: "hyper2kvm@yourcompany.com"
  email_to: "ops-team@yourcompany.com"
  email_subject_prefix: "[Hyper2KVM]"
`
      writeFileSync(join(dir, 'd.yaml'), seed)
      const config = await loadDaemonConfig({config: join(dir, 'd.yaml')})
      const n = config.notifications
      assert.deepEqual([n.enabled, n.webhooks[0]!.type, n.webhooks[0]!.headers['X-Custom-Header'], n.email!.security, n.email!.username, n.stallCheckInterval], [true, 'slack', 'value', 'starttls', 'your-email@gmail.com', 3600])
    } finally {
      cleanup()
    }
  })

  it('the README\'s verifier accepts our signature and refuses a changed body, a wrong secret, an old timestamp', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    const section = readme.slice(readme.indexOf('#### Notifications'))
    const code = /```js\n([\s\S]*?)```/.exec(section)![1]!.replace(/^ {2}/gm, '')
    const {verify} = (await import(`data:text/javascript,${encodeURIComponent(code)}`)) as {verify: (s: string, h: Record<string, string>, b: string) => boolean}
    const body = JSON.stringify({event: 'test'})
    const lower = (h: Record<string, string>) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]))
    const headers = lower(signatureHeaders('s3cret', body))
    assert.equal(verify('s3cret', headers, body), true)
    assert.equal(verify('s3cret', headers, body.replace('test', 'tesT')), false)
    assert.equal(verify('other', headers, body), false)
    assert.equal(verify('s3cret', lower(signatureHeaders('s3cret', body, new Date(Date.now() - 600_000))), body), false)
  })

  it('the README\'s notifications example is valid for the daemon schema', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    const section = readme.slice(readme.indexOf('#### Notifications'))
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!
    const validate = schemaValidator('daemon')
    const config = {command: 'daemon', output_dir: 'o', watch_dir: 'q', ...(parse(yaml) as object)}
    assert.equal(validate(config), true, JSON.stringify(validate.errors))
  })
})
