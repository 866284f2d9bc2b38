import assert from 'node:assert/strict'
import {type ChildProcess, execFileSync, spawn} from 'node:child_process'
import {existsSync, mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import Database from 'better-sqlite3'

import {makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {CLI, runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs: number, log?: () => string): Promise<T> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    const value = fn()
    if (value) return value
    await sleep(50)
  }
  throw new Error(`timed out waiting for ${what}${log ? `\n${log()}` : ''}`)
}

function succeeded(out: string): Array<{source_path: string; output_path: string}> {
  const path = join(out, '.daemon', 'jobs.db')
  if (!existsSync(path)) return []
  const db = new Database(path, {readonly: true})
  try {
    return db.prepare("SELECT source_path, output_path FROM jobs WHERE status = 'succeeded'").all() as Array<{source_path: string; output_path: string}>
  } finally {
    db.close()
  }
}

/** `hyper2kvm --config FILE` (no command) through the real, built CLI. */
describe('hyper2kvm --config FILE without a command', function () {
  this.timeout(90_000)
  let dir: string
  let cleanup: () => void
  const children: ChildProcess[] = []
  before(() => ({cleanup, dir} = makeTempDir('h2k-config-route-')))
  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGKILL')
        await gone
      }
    }
  })
  after(() => cleanup())

  it('runs the daemon when the file says `command: daemon`: it converts a dropped disk and `ctl stop` ends it with exit 0', async () => {
    const base = join(dir, 'daemon')
    const watch = join(base, 'queue')
    const out = join(base, 'out')
    mkdirSync(watch, {recursive: true})
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, 'command: daemon\nwatch_dir: queue\noutput_dir: out\nmax_concurrent_jobs: 2\n')
    // Relative --config from the working directory, plus a flag after it that only `daemon` knows.
    const child = spawn(process.execPath, [CLI, '--config', 'daemon.yaml', '--stability-interval', '100'], {cwd: base, env: {...process.env, NO_COLOR: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
    children.push(child)
    let stderr = ''
    child.stderr!.on('data', (chunk) => (stderr += chunk))
    child.stdout!.resume()
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    await until('the control socket', () => child.exitCode === null && existsSync(join(out, '.daemon', 'control.sock')) && stderr.includes('daemon:start'), 20_000, () => `exit ${child.exitCode}\n${stderr}`)

    const status = await runCli(['ctl', 'status', '--config', config, '--json'])
    assert.equal(status.code, 0, status.stderr)
    assert.equal(status.json.state, 'RUNNING')
    assert.equal(status.json.pid, child.pid)
    assert.equal(status.json.config, config)
    assert.equal(status.json.max_concurrent_jobs, 2, 'settings come from the file')
    assert.equal(status.json.watch_dir, watch)

    const raw = makePatternedRaw(join(base, 'vm1.raw'), 8 * 1024 * 1024, [
      {length: 65_536, offset: 0, pattern: 0x5a},
      {length: 4096, offset: 8 * 1024 * 1024 - 4096, pattern: 0xa5},
    ])
    execFileSync('cp', [raw, join(base, 'staged.raw')])
    execFileSync('mv', [join(base, 'staged.raw'), join(watch, 'vm1.raw')])
    const [job] = await until('vm1 converted', () => {
      const done = succeeded(out)
      return done.length > 0 ? done : undefined
    }, 30_000, () => stderr)
    assert.equal(job!.source_path, 'vm1.raw')
    assert.ok(sameContent(join(job!.output_path, 'vm1.qcow2'), 'qcow2', raw, 'raw'))

    const stopped = await runCli(['ctl', 'stop', '--output-dir', out, '--json'])
    assert.equal(stopped.json?.state, 'STOPPING', stopped.stderr)
    assert.equal(await exited, 0)
    assert.ok(!existsSync(join(out, '.daemon', 'control.sock')))
  })

  it('`daemon: true` and --config=FILE work too; the daemon validates the file itself', async () => {
    const base = join(dir, 'invalid')
    mkdirSync(base, {recursive: true})
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, 'daemon: true\nwatch_dir: queue\noutput_dir: out\nmax_concurrent_jobs: 0\n')
    const result = await runCli([`--config=${config}`, '--json'])
    assert.equal(result.code, 2, result.stderr)
    assert.equal(result.json.error.code, 'H2K_JOB_INVALID')
    assert.match(result.json.error.message, /daemon\.yaml:4:\d+.*max_concurrent_jobs/s)
    assert.ok(!existsSync(join(base, 'out', '.daemon', 'control.sock')))
  })

  it('a job file is not guessed at: non-zero exit and the command that runs it', async () => {
    const base = join(dir, 'job')
    mkdirSync(base, {recursive: true})
    writeFileSync(join(base, 'vm.yaml'), 'input: vm.vmdk\noutput_format: qcow2\n')
    const human = await runCli(['--config', 'vm.yaml'], {cwd: base})
    assert.equal(human.code, 2)
    assert.match(human.stderr, /^Error H2K_USAGE: vm\.yaml is a job file, not a daemon configuration; .*`command: daemon`/m)
    assert.match(human.stderr, /^ {2}→ Run the job: hyper2kvm convert --job vm\.yaml$/m)
    assert.equal(human.stdout, '')

    const json = await runCli(['--log-level', 'warn', '--config', 'vm.yaml', '--json'], {cwd: base})
    assert.equal(json.code, 2)
    assert.equal(json.json.status, 'failed')
    assert.equal(json.json.error.code, 'H2K_USAGE')
    assert.equal(json.json.error.exit_code, 2)
    assert.ok(json.json.error.suggestions.includes('Run the job: hyper2kvm convert --job vm.yaml'))

    writeFileSync(join(base, 'many.yaml'), 'jobs:\n  - input: a.vmdk\n  - input: b.vmdk\n')
    const batch = await runCli(['--config', 'many.yaml'], {cwd: base})
    assert.equal(batch.code, 2)
    assert.match(batch.stderr, /→ Run its jobs: hyper2kvm batch many\.yaml$/m)

    writeFileSync(join(base, 'manifest.json'), JSON.stringify({pipeline: {load: {source_path: 'a.vmdk', source_type: 'vmdk'}}, version: '1.0'}))
    const manifest = await runCli(['--config', 'manifest.json'], {cwd: base})
    assert.equal(manifest.code, 2)
    assert.match(manifest.stderr, /manifest\.json is a manifest/)
    assert.match(manifest.stderr, /→ Run it: hyper2kvm batch manifest\.json$/m)
  })

  it('a missing file is a clear H2K_INPUT_NOT_FOUND error', async () => {
    const missing = join(dir, 'nowhere', 'daemon.yaml')
    const human = await runCli(['--config', missing])
    assert.equal(human.code, 3)
    assert.match(human.stderr, new RegExp(`^Error H2K_INPUT_NOT_FOUND: The configuration file ${missing.replaceAll('.', String.raw`\.`)} does not exist\.$`, 'm'))
    const json = await runCli(['--config', missing, '--json'])
    assert.equal(json.code, 3)
    assert.equal(json.json.error.code, 'H2K_INPUT_NOT_FOUND')
  })

  it('--help, --version and ordinary commands are untouched', async () => {
    const version = await runCli(['--version'])
    assert.equal(version.code, 0)
    assert.match(version.stdout, /^hyper2kvm\/\d+\.\d+\.\d+ /)
    const help = await runCli(['--help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout, /^COMMANDS$/m)
    assert.match(help.stdout, /^ {2}daemon /m)
    const daemonHelp = await runCli(['daemon', '--help'])
    assert.equal(daemonHelp.code, 0)
    assert.match(daemonHelp.stdout, /--max-concurrent-jobs/)
    // A command's own --config is still the command's (here: a missing one, reported by the command).
    const show = await runCli(['config', 'show', '--config', join(dir, 'absent.yaml'), '--json'])
    assert.equal(show.json?.error?.code, 'H2K_INPUT_NOT_FOUND', show.stdout + show.stderr)
    const unknown = await runCli(['--frobnicate'])
    assert.notEqual(unknown.code, 0)
  })
})
