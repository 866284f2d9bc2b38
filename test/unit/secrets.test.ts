import assert from 'node:assert/strict'
import {chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {createServer, type Server} from 'node:net'
import {join} from 'node:path'
import {execFileSync} from 'node:child_process'

import {H2KError} from '@hyper2kvm/plugin-api'
import {keychainGet} from '../../src/secrets/keychain.js'
import {REDACTED, redactConfig, redactSecrets, resolveSecret, type SecretNotice} from '../../src/secrets/resolve-secret.js'
import {secretRequestFromConfig} from '../../src/secrets/config-secrets.js'
import {SECRET_MAX_BYTES} from '../../src/secrets/secret-file.js'
import {secretStatus} from '../../src/secrets/secret-status.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/** No session bus: the keychain is known unavailable without starting anything. */
const HEADLESS: NodeJS.ProcessEnv = {PATH: process.env.PATH}

describe('secrets: sources and their order', () => {
  let dir: string
  let cleanup: () => void
  beforeEach(() => ({cleanup, dir} = makeTempDir('h2k-secrets-')))
  afterEach(() => cleanup())

  const secretFile = (name: string, content: string, mode = 0o600): string => {
    const path = join(dir, name)
    writeFileSync(path, content)
    chmodSync(path, mode) // not subject to the umask
    return path
  }
  const noWarn = (): void => {}

  it('keychain (unavailable) < credential < file < env < config: the first that has it wins and says so', async () => {
    const creds = join(dir, 'creds')
    mkdirSync(creds)
    const file = secretFile('pw', 'from-file\n')
    const request = {file, name: 'notifications.smtp_password', value: 'from-config'}
    const env = {...HEADLESS, CREDENTIALS_DIRECTORY: creds, HYPER2KVM_NOTIFICATIONS_SMTP_PASSWORD: 'from-env'}

    writeFileSync(join(creds, 'notifications.smtp_password'), 'from-credential\n', {mode: 0o400})
    assert.deepEqual(await resolveSecret(request, noWarn, {env}), {origin: `credential ${join(creds, 'notifications.smtp_password')}`, source: 'credential', value: 'from-credential'})
    // Another secret's credential does not count.
    env.CREDENTIALS_DIRECTORY = join(dir, 'no-such-dir')
    assert.deepEqual(await resolveSecret(request, noWarn, {env}), {origin: `file ${file}`, source: 'file', value: 'from-file'})
    assert.deepEqual(await resolveSecret({...request, file: undefined}, noWarn, {env}), {origin: 'env HYPER2KVM_NOTIFICATIONS_SMTP_PASSWORD', source: 'env', value: 'from-env'})
    assert.deepEqual(await resolveSecret({...request, file: undefined}, noWarn, {env: HEADLESS}), {origin: 'config', source: 'config', value: 'from-config'})
    assert.equal(await resolveSecret({name: 'notifications.smtp_password'}, noWarn, {env: HEADLESS}), undefined)
  })

  it('a relative *_file is relative to the configuration; exactly one trailing newline is dropped', async () => {
    secretFile('token', 'abc\n\n')
    const request = secretRequestFromConfig({metrics: {token_file: 'token'}}, 'metrics.token', {baseDir: dir})
    assert.equal((await resolveSecret(request, noWarn, {env: HEADLESS}))?.value, 'abc\n')
    secretFile('crlf', 'abc\r\n')
    assert.equal((await resolveSecret({baseDir: dir, file: 'crlf', name: 'metrics.token'}, noWarn, {env: HEADLESS}))?.value, 'abc')
  })

  it('a plain value warns once per name and load (SECRET_IN_CONFIG, naming the key, never the value), even when another source wins', async () => {
    const warnings: Array<[string, SecretNotice | undefined]> = []
    const warn = (message: string, notice?: SecretNotice): void => void warnings.push([message, notice])
    const request = {configFile: '/etc/hyper2kvm/daemon.yaml', name: 'vsphere.password', value: 'plain-vsphere-pw'}
    await resolveSecret(request, warn, {env: {...HEADLESS, HYPER2KVM_VSPHERE_PASSWORD: 'env-pw'}})
    await resolveSecret(request, warn, {env: HEADLESS})
    assert.equal(warnings.length, 1)
    assert.deepEqual(warnings[0]![1], {code: 'SECRET_IN_CONFIG', name: 'vsphere.password'})
    assert.match(warnings[0]![0], /SECRET_IN_CONFIG: vsphere\.password .*daemon\.yaml/)
    assert.doesNotMatch(warnings[0]![0], /plain-vsphere-pw/)
  })

  describe('*_file safety: refused with H2K_SECRET_UNSAFE, never quoting the file', () => {
    const CONTENT = 'MARKER-do-not-echo-42'
    const refused = async (path: string, reason: string, code = 'H2K_SECRET_UNSAFE'): Promise<void> => {
      await assert.rejects(resolveSecret({file: path, name: 'notifications.webhook_secret'}, noWarn, {env: {...HEADLESS, HYPER2KVM_NOTIFICATIONS_WEBHOOK_SECRET: 'env-would-work'}}), (error: H2KError) => {
        assert.ok(error instanceof H2KError)
        assert.equal(error.code, code)
        assert.equal(error.details.reason, reason)
        assert.ok(!JSON.stringify({...error.toJSON(), details: error.details, message: error.message}).includes(CONTENT), 'the refusal quotes the file')
        assert.match(error.message, /notifications\.webhook_secret_file/)
        return true
      })
    }

    it('group- or other-accessible modes', async () => {
      for (const mode of [0o644, 0o640, 0o604, 0o620, 0o440]) await refused(secretFile(`m${mode.toString(8)}`, CONTENT, mode), 'mode')
      for (const mode of [0o600, 0o400]) assert.equal((await resolveSecret({file: secretFile(`ok${mode.toString(8)}`, CONTENT, mode), name: 'metrics.token'}, noWarn, {env: HEADLESS}))?.value, CONTENT)
    })

    it('a symlink, even to a safe file; a directory; a FIFO', async () => {
      const target = secretFile('target', CONTENT)
      symlinkSync(target, join(dir, 'link'))
      await refused(join(dir, 'link'), 'symlink')
      mkdirSync(join(dir, 'adir'), {mode: 0o700})
      await refused(join(dir, 'adir'), 'not-regular')
      execFileSync('mkfifo', ['-m', '600', join(dir, 'fifo')])
      await refused(join(dir, 'fifo'), 'not-regular')
    })

    it('a file owned by another user (the suite runs as root, as the daemon tests do)', async () => {
      const path = secretFile('foreign', CONTENT)
      chownSync(path, 65534, 65534)
      await refused(path, 'owner')
    })

    it('larger than 64 KiB; missing or empty is H2K_SECRET_UNAVAILABLE', async () => {
      await refused(secretFile('big', CONTENT + 'x'.repeat(SECRET_MAX_BYTES)), 'size')
      await refused(join(dir, 'missing'), 'missing', 'H2K_SECRET_UNAVAILABLE')
      await refused(secretFile('empty', '\n'), 'empty', 'H2K_SECRET_UNAVAILABLE')
    })
  })

  it('a credential that is a symlink is refused (systemd never makes one)', async () => {
    const creds = join(dir, 'creds')
    mkdirSync(creds)
    symlinkSync(secretFile('elsewhere', 'x-value'), join(creds, 'metrics.token'))
    await assert.rejects(resolveSecret({name: 'metrics.token'}, noWarn, {env: {...HEADLESS, CREDENTIALS_DIRECTORY: creds}}), {code: 'H2K_SECRET_UNSAFE'})
    const report = await secretStatus([{name: 'metrics.token'}], noWarn, {env: {...HEADLESS, CREDENTIALS_DIRECTORY: creds}})
    assert.equal(report.secrets[0]!.source, 'credential')
    assert.equal(report.secrets[0]!.error?.code, 'H2K_SECRET_UNSAFE')
    assert.match(report.keychain_unavailable ?? '', /no D-Bus session bus/)
  })
})

describe('secrets: the keychain degrades cleanly', () => {
  it('without a session bus: next source, one debug note, nothing started', async () => {
    const notes: string[] = []
    const started = Date.now()
    const env = {...HEADLESS, HYPER2KVM_METRICS_TOKEN: 'tok-env'}
    const resolved = await resolveSecret({name: 'metrics.token'}, () => {}, {debug: (m) => notes.push(m), env})
    assert.equal(resolved?.source, 'env')
    assert.ok(Date.now() - started < 200, 'no helper process was started')
    await assert.rejects(keychainGet(['metrics.token'], {env: HEADLESS}), (error: H2KError) => error.code === 'H2K_SECRET_UNAVAILABLE' && /no D-Bus session bus/.test(error.message))
  })

  it('a session bus that never answers: the helper is killed at the timeout, H2K_SECRET_UNAVAILABLE', async function () {
    this.timeout(20_000)
    const {cleanup, dir} = makeTempDir('h2k-bus-')
    const silent: Server = createServer(() => {}) // accepts, never says a word
    const socket = join(dir, 'bus')
    await new Promise<void>((resolve) => silent.listen(socket, resolve))
    try {
      const started = Date.now()
      await assert.rejects(keychainGet(['metrics.token'], {env: {...HEADLESS, DBUS_SESSION_BUS_ADDRESS: `unix:path=${socket}`}, timeoutMs: 2000}), (error: H2KError) => {
        assert.equal(error.code, 'H2K_SECRET_UNAVAILABLE')
        assert.match(error.message, /did not answer within 2 s/)
        return true
      })
      const took = Date.now() - started
      assert.ok(took >= 2000 && took < 6000, `took ${took} ms`)
    } finally {
      silent.close()
      cleanup()
    }
  })

  it('a bus address with nothing behind it: unavailable at once', async () => {
    await assert.rejects(keychainGet(['metrics.token'], {env: {...HEADLESS, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/h2k-bus'}}), {code: 'H2K_SECRET_UNAVAILABLE'})
  })
})

describe('secrets: redaction', () => {
  it('redactSecrets removes every resolved value from text', async () => {
    await resolveSecret({name: 'notifications.webhook_secret'}, () => {}, {env: {...HEADLESS, HYPER2KVM_NOTIFICATIONS_WEBHOOK_SECRET: 'hook-sekrit-77'}})
    assert.equal(redactSecrets('signing with hook-sekrit-77 failed'), `signing with ${REDACTED} failed`)
  })

  it('redactConfig replaces secret keys at any depth and credential headers, keeps *_file paths', () => {
    const config = {
      metrics: {address: '0.0.0.0', token: 't0k'},
      notifications: {smtp_password: 'p', smtp_password_file: '/etc/hyper2kvm/smtp', smtp_username: 'u', webhook_headers: {Authorization: 'Bearer x', 'X-Api-Key': 'k', 'X-Custom-Header': 'value'}, webhook_secret: 's'},
      vsphere: {password: 'v', server: 'vc'},
    }
    assert.deepEqual(redactConfig(config), {
      metrics: {address: '0.0.0.0', token: REDACTED},
      notifications: {smtp_password: REDACTED, smtp_password_file: '/etc/hyper2kvm/smtp', smtp_username: 'u', webhook_headers: {Authorization: REDACTED, 'X-Api-Key': REDACTED, 'X-Custom-Header': 'value'}, webhook_secret: REDACTED},
      vsphere: {password: REDACTED, server: 'vc'},
    })
    assert.equal(config.vsphere.password, 'v', 'the original is untouched')
  })
})
