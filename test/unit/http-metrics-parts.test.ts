import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {loadDaemonConfig} from '../../src/daemon/config.js'
import {notifySettings} from '../../src/daemon/sd-notify.js'
import {watchdogVerdict} from '../../src/daemon/systemd-piece.js'
import {BearerToken, isLoopback} from '../../src/http/bearer-token.js'
import type {H2KError} from '@hyper2kvm/plugin-api'
import {requestIdOf} from '../../src/http/request-id.js'
import {RouteTable, json} from '../../src/http/routes.js'
import {StageLabels, errorCodeLabel, phaseLabel} from '../../src/metrics/label-values.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('HTTP listener, metrics labels and sd_notify: the rules', () => {
  it('loopback is 127.0.0.0/8, ::1 and localhost; everything else needs a token', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a)
    for (const a of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '::ffff:10.0.0.1', 'example.org', '127.0.0.1.nip.io']) assert.equal(isLoopback(a), false, a)
  })

  it('accepts exactly `Bearer <token>`', () => {
    const token = new BearerToken('0123456789abcdef0123')
    assert.equal(token.accepts('Bearer 0123456789abcdef0123'), true)
    assert.equal(token.accepts('bearer   0123456789abcdef0123'), true)
    for (const h of [undefined, '', 'Bearer', 'Bearer ', 'Bearer 0123456789abcdef012', 'Bearer 0123456789abcdef01234', 'Basic 0123456789abcdef0123', 'Bearer 0123456789abcdef0123 extra']) assert.equal(token.accepts(h), false, String(h))
  })

  it('reuses a sane X-Request-Id and replaces any other', () => {
    assert.equal(requestIdOf('abc-123_x.y:z'), 'abc-123_x.y:z')
    assert.equal(requestIdOf(['first', 'second']), 'first')
    for (const bad of [undefined, '', 'a b', 'a\nb', 'x'.repeat(129), '<script>', 'é']) assert.match(requestIdOf(bad), /^req-[0-9a-f-]{36}$/, String(bad))
  })

  it('routes by method and path segments, with :params and the methods a path allows', async () => {
    const reply = async () => json(200, {})
    const table = new RouteTable([
      {handle: reply, method: 'GET', name: 'metrics', path: '/metrics'},
      {handle: reply, method: 'GET', name: 'job', path: '/api/v1/jobs/:id'},
      {handle: reply, method: 'DELETE', name: 'job-delete', path: '/api/v1/jobs/:id'},
    ])
    assert.equal(table.match('GET', '/metrics').found?.route.name, 'metrics')
    assert.equal(table.match('HEAD', '/metrics').found?.route.name, 'metrics')
    assert.deepEqual(table.match('GET', '/api/v1/jobs/a%20b').found?.params, {id: 'a b'})
    assert.equal(table.match('DELETE', '/api/v1/jobs/x').found?.route.name, 'job-delete')
    assert.deepEqual(table.match('POST', '/api/v1/jobs/x').allowed, ['GET', 'DELETE'])
    assert.equal(table.match('GET', '/metrics/extra').found, undefined)
    assert.deepEqual(table.match('GET', '/metrics/extra').allowed, [])
    assert.equal(table.match('GET', '/api/v1/jobs/%E0%A4%A').found, undefined, 'a malformed escape matches nothing')
  })

  it('label values come from bounded sets', () => {
    assert.equal(errorCodeLabel('H2K_INPUT_UNRECOGNIZED'), 'H2K_INPUT_UNRECOGNIZED')
    assert.equal(errorCodeLabel('alpha.vmdk'), 'H2K_INTERNAL')
    assert.equal(phaseLabel('convert'), 'convert')
    assert.equal(phaseLabel('my-file.vmdk'), 'other')
    const stages = new StageLabels(2)
    assert.equal(stages.label('loader:raw'), 'loader:raw')
    assert.equal(stages.label('bad name"}'), 'other')
    assert.equal(stages.label('converter:qemu-img'), 'converter:qemu-img')
    assert.equal(stages.label('third:stage'), 'other', 'beyond the limit')
    assert.equal(stages.label('loader:raw'), 'loader:raw', 'known ids keep their name')
  })

  it('reads NOTIFY_SOCKET and the watchdog variables; abstract names are reported, not sent to', () => {
    assert.deepEqual(notifySettings({}), {})
    assert.deepEqual(notifySettings({NOTIFY_SOCKET: '/run/systemd/notify'}), {socketPath: '/run/systemd/notify'})
    assert.deepEqual(notifySettings({NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000'}, 42), {socketPath: '/run/systemd/notify', watchdogUsec: 30_000_000})
    assert.deepEqual(notifySettings({NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_PID: '42', WATCHDOG_USEC: '30000000'}, 42), {socketPath: '/run/systemd/notify', watchdogUsec: 30_000_000})
    assert.deepEqual(notifySettings({NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_PID: '43', WATCHDOG_USEC: '30000000'}, 42), {socketPath: '/run/systemd/notify'}, 'the watchdog is meant for another process')
    assert.deepEqual(notifySettings({NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: 'soon'}), {socketPath: '/run/systemd/notify'})
    const abstract = notifySettings({NOTIFY_SOCKET: '@/org/freedesktop/systemd1/notify'})
    assert.equal(abstract.socketPath, undefined)
    assert.match(abstract.problem!, /abstract socket name/)
    assert.match(notifySettings({NOTIFY_SOCKET: 'vsock:2:1234'}).problem!, /neither a path/)
  })

  it('withholds the watchdog ping when the intake loop has not finished a scan within the watchdog period', () => {
    const now = Date.parse('2026-01-01T00:00:30Z')
    const at = (s: number) => new Date(now - s * 1000)
    assert.equal(watchdogVerdict({}, 30_000_000, now).ok, true, 'before the first scan / not reported: the timer alone')
    assert.equal(watchdogVerdict({intakeIntervalMs: 1000, intakeTickAt: at(2)}, 30_000_000, now).ok, true)
    const stale = watchdogVerdict({intakeIntervalMs: 1000, intakeTickAt: at(31)}, 30_000_000, now)
    assert.equal(stale.ok, false)
    assert.match(stale.reason!, /not finished a scan for 31 s \(limit 30 s\)/)
    assert.equal(watchdogVerdict({intakeIntervalMs: 60_000, intakeTickAt: at(100)}, 30_000_000, now).ok, true, 'rare scans (file_stable_interval 60 s) get three intervals')
  })
})

describe('metrics: configuration keys', () => {
  it("takes the seed's `metrics: {enabled: true, port: 9090}` as printed, with loopback by default; refuses unknown keys", async () => {
    const {cleanup, dir} = makeTempDir('h2k-metrics-config-')
    try {
      const seed = join(dir, 'seed.yaml')
      writeFileSync(seed, `command: daemon\nwatch_dir: ${dir}/in\noutput_dir: ${dir}/out\nmetrics:\n  enabled: true\n  port: 9090\n`)
      assert.deepEqual((await loadDaemonConfig({config: seed})).metrics, {address: '127.0.0.1', enabled: true, port: 9090})
      const none = join(dir, 'none.yaml')
      writeFileSync(none, `command: daemon\nwatch_dir: ${dir}/in\noutput_dir: ${dir}/out\n`)
      assert.deepEqual((await loadDaemonConfig({config: none})).metrics, {address: '127.0.0.1', enabled: false, port: 9090})
      const full = join(dir, 'full.yaml')
      writeFileSync(full, `command: daemon\nwatch_dir: ${dir}/in\noutput_dir: ${dir}/out\nmetrics: {enabled: true, port: 9464, address: "::", token_file: secrets/metrics.token}\n`)
      assert.deepEqual((await loadDaemonConfig({config: full})).metrics, {address: '::', enabled: true, port: 9464, tokenFile: join(dir, 'secrets', 'metrics.token')})
      const wrong = join(dir, 'wrong.yaml')
      writeFileSync(wrong, `command: daemon\nwatch_dir: ${dir}/in\noutput_dir: ${dir}/out\nmetrics: {enabled: true, listen: 9090}\n`)
      await assert.rejects(loadDaemonConfig({config: wrong}), (error: H2KError) => error.code === 'H2K_JOB_INVALID' && /listen/.test(error.message))
      const short = join(dir, 'short.yaml')
      writeFileSync(short, `command: daemon\nwatch_dir: ${dir}/in\noutput_dir: ${dir}/out\nmetrics: {enabled: true, token: secret}\n`)
      await assert.rejects(loadDaemonConfig({config: short}), (error: H2KError) => error.code === 'H2K_JOB_INVALID')
    } finally {
      cleanup()
    }
  })
})
