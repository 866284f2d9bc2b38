import assert from 'node:assert/strict'
import {closeSync, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, symlinkSync, writeFileSync} from 'node:fs'
import {execFileSync, spawn} from 'node:child_process'
import {connect} from 'node:net'
import {join} from 'node:path'

import {jobs, startDaemon, until} from '../helpers/daemon-process.js'
import {daemonSuite} from '../helpers/daemon-suite.js'
import {CLI, runCli} from '../helpers/run-cli.js'

/** One raw line on the control socket → the reply line. */
function request(socketPath: string, line: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath, () => socket.write(`${line}\n`))
    let reply = ''
    socket.setEncoding('utf8')
    socket.on('error', reject)
    socket.on('data', (chunk: string) => {
      reply += chunk
      if (reply.includes('\n')) {
        socket.destroy()
        resolve(JSON.parse(reply.slice(0, reply.indexOf('\n'))) as Record<string, unknown>)
      }
    })
  })
}

/** A daemon configuration in `base`: watch layout (in/, out/) plus `extra` keys. */
function configIn(base: string, extra: string): {config: string; inbox: string; out: string} {
  mkdirSync(base, {recursive: true})
  const config = join(base, 'daemon.yaml')
  writeFileSync(config, `command: daemon\nwatch_dir: in\noutput_dir: out\nretry_policy:\n  enabled: false\n${extra}`)
  return {config, inbox: join(base, 'in'), out: join(base, 'out')}
}

/** A failing drop (text in a .vmdk: H2K_INPUT_UNRECOGNIZED, permanent). */
const dropBad = (inbox: string, name: string): void => writeFileSync(join(inbox, name), 'not a disk\n')

/** The daemon's logs through real daemon processes: JSON lines, --log-level, one sink, reopen for logrotate, request ids. */
describe('daemon: logs (log_format, --log-level, log_file as the one sink, SIGUSR1/SIGHUP reopen, request ids)', function () {
  this.timeout(60_000)
  const suite = daemonSuite('h2k-daemon-logs-')
  const {daemons} = suite

  it('log_format: json and --log-level debug: every stderr line is JSON with level, time, event; job lines carry job_id; requests a request_id', async () => {
    const {config, inbox, out} = configIn(join(suite.dir, 'json'), 'log_format: json\nverbose: 0\n')
    const d = await startDaemon(['--config', config, '--log-level', 'debug'], out)
    daemons.push(d)
    dropBad(inbox, 'bad.vmdk')
    await until('job:failed', () => d.stderr().includes('"event":"job:failed"'), 20_000, d)
    const refused = await request(join(out, '.daemon', 'control.sock'), '{"command":"STOP"}')
    assert.equal(refused.ok, false)
    assert.match(String(refused.request_id), /^req-[0-9a-f]{12}$/)
    const status = await runCli(['ctl', 'status', '--output-dir', out, '--json'])
    assert.equal(status.code, 0, status.stderr)
    assert.ok(!('request_id' in status.json), 'ctl results stay as they were: the id is for errors and the log')
    assert.equal((await runCli(['ctl', 'stop', '--output-dir', out])).code, 0)
    assert.equal(await d.exited, 0)

    const lines = d.stderr().trim().split('\n').map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>
      } catch {
        assert.fail(`not a JSON line: ${JSON.stringify(line)}`)
      }
    })
    for (const line of lines) {
      assert.ok(['debug', 'info', 'warn', 'error'].includes(String(line.level)), JSON.stringify(line))
      assert.ok(!Number.isNaN(Date.parse(String(line.time))), JSON.stringify(line))
      assert.equal(typeof line.event, 'string')
      assert.equal(line.pid, d.child.pid)
    }
    const id = jobs(out)[0]!.id
    // job:error-file is about the claim (intake_id): every other job line names its job.
    const jobLines = lines.filter((l) => String(l.event).startsWith('job:') && l.event !== 'job:error-file')
    assert.ok(jobLines.length >= 3, 'queued, start, failed')
    for (const line of jobLines) assert.equal(line.job_id, id, JSON.stringify(line))
    const failed = lines.find((l) => l.event === 'job:failed')!
    assert.deepEqual([failed.level, failed.file, failed.phase, failed.code], ['error', 'bad.vmdk', 'load', 'H2K_INPUT_UNRECOGNIZED'])
    assert.ok(lines.some((l) => l.event === 'file:claimed' && typeof l.intake_id === 'string'))
    assert.ok(lines.some((l) => l.event === 'file:seen' && l.level === 'debug'), '--log-level debug beats verbose: 0')
    assert.ok(lines.some((l) => l.event === 'control:refused' && l.request_id === refused.request_id), 'the refused request is in the log under its id')
    assert.ok(lines.some((l) => l.event === 'control:request' && l.command === 'status' && /^req-/.test(String(l.request_id))))
  })

  it('log_file is the one sink: lines there only (stderr: the start notice), --log-level warn hides info; rename + SIGUSR1 or SIGHUP: later lines in the new file', async () => {
    const base = join(suite.dir, 'file')
    const {config, inbox, out} = configIn(base, 'log_file: log/daemon.log\nlog_level: debug\n')
    const log = join(base, 'log', 'daemon.log')
    const d = await startDaemon(['--config', config, '--log-level', 'warn'], out)
    daemons.push(d)
    const read = (path: string): string => (existsSync(path) ? readFileSync(path, 'utf8') : '')
    dropBad(inbox, 'one.vmdk')
    await until('one failed', () => /job:failed .*file=one\.vmdk/.test(read(log)), 20_000, d)

    renameSync(log, `${log}.1`)
    d.child.kill('SIGUSR1')
    await until('the new file', () => existsSync(log), 5000, d)
    dropBad(inbox, 'two.vmdk')
    await until('two failed', () => /job:failed .*file=two\.vmdk/.test(read(log)), 20_000, d)

    renameSync(log, `${log}.2`)
    d.child.kill('SIGHUP')
    await until('the newer file', () => existsSync(log), 5000, d)
    dropBad(inbox, 'three.vmdk')
    await until('three failed', () => /job:failed .*file=three\.vmdk/.test(read(log)), 20_000, d)
    assert.equal((await runCli(['ctl', 'stop', '--output-dir', out])).code, 0)
    assert.equal(await d.exited, 0, 'SIGUSR1 neither killed the daemon nor opened a debugger')

    const files = {current: read(log), first: read(`${log}.1`), second: read(`${log}.2`)}
    assert.match(files.first, /ERROR job:failed .*file=one\.vmdk/)
    assert.match(files.second, /ERROR job:failed .*file=two\.vmdk/)
    assert.match(files.current, /ERROR job:failed .*file=three\.vmdk/)
    const all = Object.values(files).join('')
    for (const name of ['one', 'two', 'three']) assert.equal(all.match(new RegExp(`job:failed .*file=${name}\\.vmdk`, 'g'))?.length, 1, `${name}: logged once, in one file`)
    assert.doesNotMatch(all, / (INFO|DEBUG) /, '--log-level warn beats log_level: debug')
    // stderr: exactly one line, the start notice, whatever the level; no job line twice, no inspector.
    const stderr = d.stderr().trim().split('\n')
    assert.equal(stderr.length, 1, d.stderr())
    assert.match(stderr[0]!, new RegExp(`INFO daemon:start log_file=${log.replaceAll('/', '\\/')} pid=${d.child.pid} further lines go to log_file$`))
    assert.doesNotMatch(d.stderr(), /Debugger listening/)
  })

  it('the shipped logrotate snippet (no copytruncate, USR1 to the main process) rotates a running daemon\'s log_file: nothing lost, nothing twice', async () => {
    const base = join(suite.dir, 'logrotate')
    const {config, inbox, out} = configIn(base, 'log_file: log/daemon.log\n')
    const log = join(base, 'log', 'daemon.log')
    const d = await startDaemon(['--config', config], out)
    daemons.push(d)
    dropBad(inbox, 'before.vmdk')
    await until('before failed', () => /job:failed .*file=before\.vmdk/.test(readFileSync(log, 'utf8')), 20_000, d)

    // The example as shipped, pointed at this daemon: its path, root instead of the hyper2kvm user, and
    // `kill` in place of `systemctl kill` (no systemd here); every other line is logrotate's to interpret.
    const example = readFileSync(new URL('../../examples/systemd/hyper2kvm-daemon.logrotate', import.meta.url), 'utf8')
    assert.doesNotMatch(example, /^\s*copytruncate/m)
    const rewrites: Array<[RegExp, string]> = [
      [/^\/var\/log\/hyper2kvm\/daemon\.log \{$/m, `${log} {`],
      [/^(\s*create 0640) hyper2kvm hyper2kvm$/m, '$1 root root'],
      [/^\s*su hyper2kvm hyper2kvm\n/m, ''],
      [/^(\s*)systemctl kill --kill-whom=main --signal=USR1 hyper2kvm-daemon\.service (.*)$/m, `$1kill -USR1 ${d.child.pid} $2`],
    ]
    let conf = example
    for (const [pattern, replacement] of rewrites) {
      assert.match(conf, pattern, 'the example still has this line')
      conf = conf.replace(pattern, replacement)
    }
    writeFileSync(join(base, 'logrotate.conf'), conf, {mode: 0o644})
    execFileSync('logrotate', ['--force', '--state', join(base, 'logrotate.state'), join(base, 'logrotate.conf')], {stdio: 'pipe'})

    dropBad(inbox, 'after.vmdk')
    await until('after failed', () => /job:failed .*file=after\.vmdk/.test(readFileSync(log, 'utf8')), 20_000, d)
    assert.equal((await runCli(['ctl', 'stop', '--output-dir', out])).code, 0)
    assert.equal(await d.exited, 0)
    const rotated = readFileSync(`${log}.1`, 'utf8')
    const current = readFileSync(log, 'utf8')
    assert.match(rotated, /job:failed .*file=before\.vmdk/)
    assert.doesNotMatch(rotated, /after\.vmdk/)
    assert.match(current, /^\S+ INFO daemon:log-reopened /, 'the new file starts with the reopen')
    assert.match(current, /daemon:stopped/)
    assert.equal(lstatSync(log).mode & 0o777, 0o640)
    for (const line of `${rotated}${current}`.trim().split('\n')) assert.match(line, /^\d{4}-\d\d-\d\dT[\d:.]+Z (ERROR|WARN|INFO|DEBUG) [\w:-]+/, 'no line cut in two')
  })

  it('SIGHUP applies a changed log_level to the running daemon', async () => {
    const base = join(suite.dir, 'reload')
    const {config, inbox, out} = configIn(base, 'log_file: daemon.log\nlog_level: warn\n')
    const log = join(base, 'daemon.log')
    const d = await startDaemon(['--config', config], out)
    daemons.push(d)
    writeFileSync(config, readFileSync(config, 'utf8').replace('log_level: warn', 'log_level: info'))
    d.child.kill('SIGHUP')
    await until('daemon:reloaded', () => readFileSync(log, 'utf8').includes('daemon:reloaded'), 10_000, d)
    dropBad(inbox, 'bad.vmdk')
    await until('job:queued at info', () => /INFO job:queued .*file=bad\.vmdk/.test(readFileSync(log, 'utf8')), 20_000, d)
    assert.match(readFileSync(log, 'utf8'), /INFO daemon:reloaded changed="logLevel: \\"warn\\" → \\"info\\""/)
    assert.equal((await runCli(['ctl', 'stop', '--output-dir', out])).code, 0)
    assert.equal(await d.exited, 0)
  })

  it('a reader of stderr that goes away (`daemon 2>&1 | logger` restarted: EPIPE) does not end the daemon; it goes on working', async () => {
    const {config, inbox, out} = configIn(join(suite.dir, 'epipe'), '')
    const d = await startDaemon(['--config', config], out)
    daemons.push(d)
    // The read end of its stderr closed: every later line it writes there fails with EPIPE.
    d.child.stderr!.destroy()
    dropBad(inbox, 'after-epipe.vmdk')
    await until('the drop after the EPIPE is handled', () => jobs(out).find((j) => j.source_path === 'after-epipe.vmdk' && j.status === 'failed'), 20_000)
    const status = await runCli(['ctl', 'status', '--output-dir', out, '--json'])
    assert.equal(status.code, 0, status.stderr)
    assert.equal(status.json.state, 'RUNNING')
    assert.equal((await runCli(['ctl', 'stop', '--output-dir', out])).code, 0)
    assert.equal(await d.exited, 0)
  })

  it('under journald (stderr is the stream JOURNAL_STREAM names) each line starts with its syslog priority, so journalctl -p err works', async () => {
    const {config, inbox, out} = configIn(join(suite.dir, 'journal'), '')
    const stream = join(suite.dir, 'journal', 'stream')
    const fd = openSync(stream, 'w')
    const {dev, ino} = fstatSync(fd)
    const child = spawn(process.execPath, [CLI, 'daemon', '--config', config, '--stability-interval', '100'], {env: {...process.env, JOURNAL_STREAM: `${dev}:${ino}`, NO_COLOR: '1'}, stdio: ['ignore', 'ignore', fd]})
    closeSync(fd)
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
    try {
      await until('daemon:start', () => readFileSync(stream, 'utf8').includes('daemon:start') && existsSync(join(out, '.daemon', 'control.sock')), 20_000)
      dropBad(inbox, 'bad.vmdk')
      await until('job:failed', () => readFileSync(stream, 'utf8').includes('job:failed'), 20_000)
      assert.equal((await runCli(['ctl', 'stop', '--output-dir', out])).code, 0)
      assert.equal(await exited, 0)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
    const lines = readFileSync(stream, 'utf8').trim().split('\n')
    for (const line of lines) assert.match(line, /^<[3467]>\d{4}-/, line)
    assert.match(lines.find((l) => l.includes('job:failed'))!, /^<3>\S+ ERROR job:failed /)
    assert.match(lines.find((l) => l.includes('daemon:start'))!, /^<6>\S+ INFO daemon:start /)
  })

  it('a symlink at log_file is refused: the daemon does not start and writes nothing through it', async () => {
    const base = join(suite.dir, 'symlink')
    const {config, out} = configIn(base, 'log_file: daemon.log\n')
    const victim = join(base, 'victim.txt')
    writeFileSync(victim, 'precious\n')
    symlinkSync(victim, join(base, 'daemon.log'))
    const run = await runCli(['daemon', '--config', config])
    assert.equal(run.code, 4, run.stderr)
    assert.match(run.stderr, /H2K_UNSAFE_PATH/)
    assert.match(run.stderr, /is a symbolic link: refused/)
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n')
    assert.ok(!existsSync(join(out, '.daemon', 'control.sock')))
  })
})
