import assert from 'node:assert/strict'
import {chmodSync, mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {resolveSecret} from '../../src/secrets/resolve-secret.js'
import {spawn} from 'node:child_process'

import {CLI, runCli} from '../helpers/run-cli.js'
import {type SecretService, startSecretService} from '../helpers/secret-service.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/** Every secret value the seed-like configuration below can reach; none may be printed anywhere. */
const SECRETS = {
  authorization: 'hdr-sekrit-123',
  credential: 'cred-vs-sekrit-654',
  env: 'metrics-sekrit-321',
  file: 'whsec-sekrit-000',
  smtp: 'smtp-sekrit-456',
  vsphere: 'vs-sekrit-789',
}

/** The seed's production configuration (000_*, paths moved) with every kind of secret source. */
function seedConfig(dir: string): string {
  writeFileSync(join(dir, 'webhook-secret'), `${SECRETS.file}\n`)
  chmodSync(join(dir, 'webhook-secret'), 0o600)
  const file = join(dir, 'daemon.yaml')
  writeFileSync(
    file,
    `command: daemon
daemon: true
watch_dir: ${dir}/queue
output_dir: ${dir}/output
work_dir: ${dir}/work
log_file: ${dir}/daemon.log
verbose: 2
max_concurrent_jobs: 3
file_stable_timeout: 60
retry_policy:
  enabled: true
  max_retries: 3
  retry_delay: 600
  backoff_multiplier: 2.0
enable_deduplication: true
deduplication_use_md5: false
archive_processed: true
notifications:
  enabled: true
  webhook_url: "http://127.0.0.1:9/hook"
  webhook_type: "generic"
  webhook_headers:
    Authorization: "Bearer ${SECRETS.authorization}"
    X-Custom-Header: "value"
  webhook_secret_file: webhook-secret
  notify_on_success: false
  notify_on_failure: true
  notify_on_stall: true
  email_enabled: true
  smtp_server: "127.0.0.1"
  smtp_port: 587
  smtp_use_tls: true
  smtp_username: "notifications@company.com"
  smtp_password: "${SECRETS.smtp}"
  email_from: "hyper2kvm@company.com"
  email_to: "oncall@company.com"
metrics:
  enabled: false
vsphere:
  server: "vcenter.company.com"
  username: "automation@vsphere.local"
  password: "${SECRETS.vsphere}"
  datacenter: "DC1"
  insecure: false
`,
  )
  return file
}

const assertNoSecret = (text: string, what: string): void => {
  for (const [kind, value] of Object.entries(SECRETS)) assert.ok(!text.includes(value), `${what} shows the ${kind} secret`)
}

describe('secrets through the real CLI (no keychain: no session bus)', function () {
  this.timeout(60_000)
  let dir: string
  let cleanup: () => void
  let config: string
  let env: NodeJS.ProcessEnv
  beforeEach(() => {
    ;({cleanup, dir} = makeTempDir('h2k-secrets-cli-'))
    config = seedConfig(dir)
    mkdirSync(join(dir, 'creds'))
    writeFileSync(join(dir, 'creds', 'vsphere.password'), SECRETS.credential, {mode: 0o400})
    env = {CREDENTIALS_DIRECTORY: join(dir, 'creds'), DBUS_SESSION_BUS_ADDRESS: '', HYPER2KVM_METRICS_TOKEN: SECRETS.env, XDG_RUNTIME_DIR: dir}
  })
  afterEach(() => cleanup())

  it('config show prints every secret as [REDACTED] with the source that provides it, in text and --json', async () => {
    const text = await runCli(['config', 'show', '--config', config], {env})
    assert.equal(text.code, 0, text.stderr)
    assertNoSecret(text.stdout + text.stderr, 'config show')
    const row = (key: string): string => text.stdout.split('\n').find((line) => line.startsWith(`${key} `)) ?? assert.fail(`no ${key} row:\n${text.stdout}`)
    assert.match(row('notifications.smtp_password'), /\[REDACTED\] +\(config .*daemon\.yaml\)$/)
    assert.match(row('notifications.webhook_headers.Authorization'), /\[REDACTED\] +\(.*daemon\.yaml\)$/)
    assert.match(row('notifications.webhook_headers.X-Custom-Header'), / value /)
    assert.match(row('notifications.webhook_secret'), /\[REDACTED\] +\(file .*webhook-secret\)$/)
    assert.match(row('notifications.webhook_secret_file'), /webhook-secret/)
    assert.match(row('metrics.token'), /\[REDACTED\] +\(env HYPER2KVM_METRICS_TOKEN\)$/)
    assert.match(row('vsphere.password'), /\[REDACTED\] +\(credential .*creds\/vsphere\.password\)$/)
    assert.match(row('retry_policy.retry_delay'), / 600 /)
    assert.match(text.stderr, /SECRET_IN_CONFIG: notifications\.smtp_password/)

    const json = await runCli(['config', 'show', '--config', config, '--json'], {env})
    assert.equal(json.code, 0, json.stderr)
    assertNoSecret(json.stdout + json.stderr, 'config show --json')
    assert.deepEqual(json.json.keys['notifications.smtp_password'], {source: `config ${config}`, value: '[REDACTED]'})
    assert.equal(json.json.keys['notifications.webhook_headers.Authorization'].value, '[REDACTED]')
    assert.equal(json.json.keys['vsphere.password'].value, '[REDACTED]')
    assert.match(json.json.keys['vsphere.password'].source, /^credential /)
    assert.deepEqual(
      json.json.secrets.map((s: {name: string; source: string}) => [s.name, s.source]),
      [
        ['notifications.smtp_password', 'config'],
        ['notifications.webhook_secret', 'file'],
        ['metrics.token', 'env'],
        ['api.token', 'none'],
        ['vsphere.password', 'credential'],
        ['store.password', 'none'],
      ],
    )
  })

  it('secrets list and get say where each secret comes from without a value; get --reveal prints only the value', async () => {
    const list = await runCli(['secrets', 'list', '--config', config, '--json'], {env})
    assert.equal(list.code, 0, list.stderr)
    assertNoSecret(list.stdout + list.stderr, 'secrets list')
    assert.match(list.json.keychain_unavailable, /no D-Bus session bus/)
    assert.deepEqual(
      list.json.secrets.map((s: {name: string; source: string}) => `${s.name}=${s.source}`),
      ['notifications.smtp_password=config', 'notifications.webhook_secret=file', 'metrics.token=env', 'api.token=none', 'vsphere.password=credential', 'store.password=none'],
    )
    const bare = await runCli(['secrets', 'list', '--config', config], {env: {...env, HYPER2KVM_METRICS_TOKEN: ''}})
    assert.match(bare.stdout, /^metrics\.token +not set$/m)

    const get = await runCli(['secrets', 'get', 'notifications.webhook_secret', '--config', config], {env})
    assert.equal(get.code, 0, get.stderr)
    assertNoSecret(get.stdout + get.stderr, 'secrets get')
    assert.match(get.stdout, /notifications\.webhook_secret: set, from file .*webhook-secret/)
    const reveal = await runCli(['secrets', 'get', 'notifications.webhook_secret', '--config', config, '--reveal'], {env})
    assert.equal(reveal.stdout, `${SECRETS.file}\n`)
    const revealJson = await runCli(['secrets', 'get', 'vsphere.password', '--config', config, '--reveal', '--json'], {env})
    assert.deepEqual({set: revealJson.json.set, source: revealJson.json.source, value: revealJson.json.value}, {set: true, source: 'credential', value: SECRETS.credential})
  })

  it('an unsafe *_file is refused with H2K_SECRET_UNSAFE (exit 4) without quoting it', async () => {
    chmodSync(join(dir, 'webhook-secret'), 0o644)
    for (const args of [['secrets', 'get', 'notifications.webhook_secret'], ['secrets', 'get', 'notifications.webhook_secret', '--reveal', '--json']]) {
      const result = await runCli([...args, '--config', config], {env})
      assert.equal(result.code, 4, result.stderr)
      assert.match(result.stdout + result.stderr, /H2K_SECRET_UNSAFE/)
      assertNoSecret(result.stdout + result.stderr, args.join(' '))
    }
    const show = await runCli(['config', 'show', '--config', config, '--json'], {env})
    assert.equal(show.code, 0, show.stderr)
    assert.deepEqual(show.json.keys['notifications.webhook_secret'], {source: 'refused: H2K_SECRET_UNSAFE', value: '[REDACTED]'})
    assertNoSecret(show.stdout + show.stderr, 'config show')
  })

  it('secrets set never takes the value as an argument, and without a keychain says what to use instead (exit 6)', async () => {
    const flag = await runCli(['secrets', 'set', 'metrics.token', '--value', 'x'], {env, input: ''})
    assert.equal(flag.code, 2)
    assert.match(flag.stderr, /H2K_USAGE/)
    const empty = await runCli(['secrets', 'set', 'metrics.token'], {env, input: ''})
    assert.equal(empty.code, 2)
    assert.match(empty.stderr, /stdin was empty/)
    const set = await runCli(['secrets', 'set', 'metrics.token', '--json'], {env, input: 'new-token-value\n'})
    assert.equal(set.code, 6)
    assert.equal(set.json.error.code, 'H2K_SECRET_UNAVAILABLE')
    assert.match(set.json.error.suggestions.join(' '), /LoadCredential=.*_file/)
    assert.ok(!(set.stdout + set.stderr).includes('new-token-value'))
    const help = await runCli(['secrets', 'set', '--help'], {env})
    assert.doesNotMatch(help.stdout, /--value/)
  })
})

describe('secrets in a real Secret Service (dbus-daemon + gnome-keyring-daemon)', function () {
  this.timeout(60_000)
  let dir: string
  let cleanup: () => void
  let service: SecretService
  before(async () => {
    ;({cleanup, dir} = makeTempDir('h2k-keyring-'))
    service = await startSecretService(dir)
  })
  after(async () => {
    await service.stop()
    cleanup()
  })

  it('secrets set then get --reveal round-trips; the keychain wins over credential, env and config; delete removes it', async () => {
    mkdirSync(join(dir, 'creds'))
    writeFileSync(join(dir, 'creds', 'metrics.token'), 'from-credential', {mode: 0o400})
    const env = {...service.env, CREDENTIALS_DIRECTORY: join(dir, 'creds'), HYPER2KVM_METRICS_TOKEN: 'from-env'}
    const set = await runCli(['secrets', 'set', 'metrics.token'], {env, input: 'from-keychain-4711\n'})
    assert.equal(set.code, 0, set.stderr)
    assert.match(set.stdout, /metrics\.token stored in the keychain/)
    assert.ok(!(set.stdout + set.stderr).includes('from-keychain-4711'))

    const reveal = await runCli(['secrets', 'get', 'metrics.token', '--reveal'], {env})
    assert.equal(reveal.code, 0, reveal.stderr)
    assert.equal(reveal.stdout, 'from-keychain-4711\n')
    const list = await runCli(['secrets', 'list', '--json'], {env})
    assert.equal(list.json.keychain_unavailable, undefined)
    assert.equal(list.json.secrets.find((s: {name: string}) => s.name === 'metrics.token').source, 'keychain')

    const resolved = await resolveSecret({name: 'metrics.token', value: 'from-config'}, () => {}, {env: {...process.env, ...env}})
    assert.deepEqual({source: resolved?.source, value: resolved?.value}, {source: 'keychain', value: 'from-keychain-4711'})

    const deleted = await runCli(['secrets', 'delete', 'metrics.token', '--json'], {env})
    assert.deepEqual(deleted.json, {deleted: true, name: 'metrics.token'})
    const after = await runCli(['secrets', 'get', 'metrics.token', '--json'], {env})
    assert.equal(after.json.source, 'credential')
  })

  it('at a terminal, secrets set prompts and does not echo what is typed (backspace edits)', async () => {
    // script(1) gives the CLI a pseudo-terminal; everything the terminal shows comes back on its stdout.
    const command = [process.execPath, CLI, 'secrets', 'set', 'notifications.smtp_password'].map((word) => `'${word}'`).join(' ')
    const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], {env: {...process.env, ...service.env}, stdio: ['pipe', 'pipe', 'pipe']})
    let screen = ''
    let typed = false
    child.stdout.on('data', (chunk: Buffer) => {
      screen += chunk.toString()
      if (!typed && screen.includes('(not echoed): ')) {
        typed = true
        child.stdin.write('typed-at-tty-99X\u007F\r')
      }
    })
    child.stderr.on('data', (chunk: Buffer) => (screen += chunk.toString()))
    const code = await new Promise((resolve) => child.on('close', resolve))
    assert.equal(code, 0, screen)
    assert.match(screen, /notifications\.smtp_password stored in the keychain/)
    assert.ok(!screen.includes('typed-at-tty'), `the terminal showed the value: ${JSON.stringify(screen)}`)
    const reveal = await runCli(['secrets', 'get', 'notifications.smtp_password', '--reveal'], {env: service.env})
    assert.equal(reveal.stdout, 'typed-at-tty-99\n')
  })
})
