import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {closeSync, existsSync, fstatSync, linkSync, lstatSync, openSync, readFileSync, renameSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {loadDaemonConfig} from '../../src/daemon/config.js'
import {DaemonLog, type DaemonLogSettings, MAX_FIELD_CHARS, MAX_MESSAGE_CHARS, stderrIsJournal} from '../../src/daemon/daemon-log.js'
import {H2KError} from '@hyper2kvm/plugin-api'
import {registerSecret} from '../../src/secrets/redact.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/** A DaemonLog whose stderr is an array of lines. */
function capture(settings: Partial<DaemonLogSettings> = {}): {log: DaemonLog; stderr: string[]} {
  const stderr: string[] = []
  const log = new DaemonLog({format: 'text', journal: false, level: 'info', ...settings}, {write: (line: string) => stderr.push(line)})
  return {log, stderr}
}

const TEXT_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (ERROR|WARN|INFO|DEBUG) [\w:-]+( |$)/

describe('daemon log (DaemonLog): formats, levels, redaction, one sink, reopen', () => {
  let dir: string
  let cleanup: () => void
  beforeEach(() => ({cleanup, dir} = makeTempDir('h2k-daemon-log-')))
  afterEach(() => cleanup())

  it('json: one object per event with level, time, pid, event, msg; job/intake become job_id/intake_id; hostile names stay on one line', () => {
    const {log, stderr} = capture({format: 'json'})
    const hostile = 'a\nb\r"c\u001b[31m\u009b2J\u2028d\u007f.vmdk'
    log.log('error', 'job:failed', {code: 'H2K_INPUT_UNRECOGNIZED', file: hostile, job: 'j1', phase: 'load'}, 'no loader\nrecognises it %s %d')
    log.log('info', 'file:claimed', {file: 'x.vmdk', intake: 'i1', level: 'spoofed', pid: process.pid})
    log.log('info', 'daemon:resumed')
    assert.equal(stderr.length, 3)
    for (const line of stderr) {
      assert.ok(line.endsWith('\n') && line.indexOf('\n') === line.length - 1, `one event, one line: ${JSON.stringify(line)}`)
      assert.ok(!/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(line.slice(0, -1)), `no raw control character: ${JSON.stringify(line)}`)
    }
    const [failed, claimed, resumed] = stderr.map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.equal(failed!.level, 'error')
    assert.ok(!Number.isNaN(Date.parse(String(failed!.time))) && String(failed!.time).endsWith('Z'))
    assert.equal(failed!.pid, process.pid)
    assert.equal(failed!.event, 'job:failed')
    assert.equal(failed!.job_id, 'j1')
    assert.equal(failed!.file, hostile, 'JSON escaping round-trips the name exactly')
    assert.equal(failed!.phase, 'load')
    assert.equal(failed!.msg, 'no loader\nrecognises it %s %d', 'no printf interpolation')
    assert.equal(claimed!.intake_id, 'i1')
    assert.equal(claimed!.level, 'info', 'a field cannot overwrite the level')
    assert.equal(claimed!.level_field, 'spoofed')
    assert.equal(stderr[1]!.match(/"pid"/g)!.length, 1, 'the pid field the daemon logs is not written twice')
    assert.ok(!('msg' in resumed!), 'no empty message')
  })

  it('text: the key=value line of log-line.ts, with job= and intake= kept', () => {
    const {log, stderr} = capture()
    log.log('info', 'job:queued', {file: 'a b.vmdk', job: 'j1', size: 6})
    log.log('warn', 'file:claimed', {file: 'x\ny', intake: 'i1'}, 'two\nlines')
    assert.match(stderr[0]!, / INFO job:queued file="a b\.vmdk" job=j1 size=6\n$/)
    assert.match(stderr[1]!, / WARN file:claimed file="x\\ny" intake=i1 two \| lines\n$/)
    for (const line of stderr) assert.match(line, TEXT_LINE)
  })

  const levels = [
    {level: 'debug', shown: ['debug', 'info', 'warn', 'error']},
    {level: 'info', shown: ['info', 'warn', 'error']},
    {level: 'warn', shown: ['warn', 'error']},
    {level: 'error', shown: ['error']},
  ] as const
  for (const {level, shown} of levels) {
    it(`level ${level} writes ${shown.join(', ')}`, () => {
      const {log, stderr} = capture({format: 'json', level})
      for (const l of ['debug', 'info', 'warn', 'error'] as const) log.log(l, `test:${l}`)
      assert.deepEqual(stderr.map((line) => (JSON.parse(line) as {level: string}).level), shown)
    })
  }

  it('setLevel changes the level of later lines (what a SIGHUP reload applies)', () => {
    const {log, stderr} = capture({level: 'warn'})
    log.log('info', 'test:hidden')
    log.setLevel('debug')
    log.log('debug', 'test:shown')
    assert.equal(stderr.length, 1)
    assert.match(stderr[0]!, /DEBUG test:shown/)
  })

  for (const format of ['text', 'json'] as const) {
    it(`${format}: a registered secret never appears (fields, nested values, message), and values are bounded`, () => {
      const secret = `hunter2-${format}-0123456789`
      registerSecret(secret)
      const {log, stderr} = capture({format})
      log.log('warn', 'notify:failed', {detail: {headers: [`Bearer ${secret}`]}, smtp_password: 'never-registered', url: `https://hooks.example/${secret}/x`}, `SMTP said: bad password ${secret}`)
      log.log('info', 'file:claimed', {file: 'x'.repeat(100_000)}, 'y'.repeat(100_000))
      assert.ok(stderr.every((l) => !l.includes(secret) && !l.includes('never-registered')), stderr[0])
      assert.equal(stderr[0]!.match(/\[REDACTED\]/g)!.length, 4, stderr[0])
      assert.ok(stderr[1]!.length < MAX_FIELD_CHARS + MAX_MESSAGE_CHARS + 400, `bounded: ${stderr[1]!.length} chars`)
      assert.match(stderr[1]!, /…\(\+97952 chars\)/)
    })
  }

  it('journald: stderr lines carry their syslog priority (<3> error … <7> debug) when JOURNAL_STREAM names our stderr', () => {
    const fd = openSync(join(dir, 'stream'), 'w')
    try {
      const {dev, ino} = fstatSync(fd)
      assert.equal(stderrIsJournal({JOURNAL_STREAM: `${dev}:${ino}`}, fd), true)
      assert.equal(stderrIsJournal({JOURNAL_STREAM: `${dev}:${ino + 1}`}, fd), false, 'inherited, but stderr was redirected since')
      assert.equal(stderrIsJournal({}, fd), false)
    } finally {
      closeSync(fd)
    }
    for (const format of ['text', 'json'] as const) {
      const {log, stderr} = capture({format, journal: true, level: 'debug'})
      for (const level of ['error', 'warn', 'info', 'debug'] as const) log.log(level, `test:${level}`)
      assert.deepEqual(stderr.map((l) => l.slice(0, 3)), ['<3>', '<4>', '<6>', '<7>'], format)
      if (format === 'json') for (const line of stderr) JSON.parse(line.slice(3))
    }
    const file = join(dir, 'journal.log')
    const {log, stderr} = capture({file, journal: true})
    log.log('info', 'daemon:start')
    log.close()
    assert.ok(stderr[0]!.startsWith('<6>'), 'the start notice too')
    assert.ok(!readFileSync(file, 'utf8').startsWith('<'), 'never in log_file')
  })

  it('log_file: lines go to the file only (0640); stderr gets the start line as a notice, whatever the level', () => {
    const file = join(dir, 'log', 'daemon.log')
    const {log, stderr} = capture({file, format: 'json', level: 'warn'})
    log.log('info', 'daemon:start', {pid: process.pid})
    log.log('warn', 'job:retry', {job: 'j1'})
    log.log('error', 'job:failed', {job: 'j1'})
    log.close()
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as {event: string})
    assert.deepEqual(lines.map((l) => l.event), ['job:retry', 'job:failed'])
    assert.equal(stderr.length, 1, stderr.join(''))
    assert.deepEqual(JSON.parse(stderr[0]!), {...JSON.parse(stderr[0]!), event: 'daemon:start', log_file: file, msg: 'further lines go to log_file'})
    assert.equal(lstatSync(file).mode & 0o777, 0o640)
  })

  it('reopen(): after a rename the new file gets the later lines, the old one keeps the earlier ones, none lost', () => {
    const file = join(dir, 'daemon.log')
    const {log, stderr} = capture({file})
    for (let i = 0; i < 5; i++) log.log('info', 'test:line', {n: i})
    renameSync(file, `${file}.1`)
    log.log('info', 'test:line', {n: 5}) // still the renamed file: logrotate signals after the rename
    log.reopen()
    for (let i = 6; i < 10; i++) log.log('info', 'test:line', {n: i})
    log.close()
    const numbers = (path: string): number[] => [...readFileSync(path, 'utf8').matchAll(/test:line n=(\d+)/g)].map((m) => Number(m[1]))
    assert.deepEqual(numbers(`${file}.1`), [0, 1, 2, 3, 4, 5])
    assert.deepEqual(numbers(file), [6, 7, 8, 9])
    assert.match(readFileSync(file, 'utf8').split('\n')[0]!, /INFO daemon:log-reopened /)
    assert.deepEqual(stderr, [])
  })

  it('refuses a symlink, a FIFO and a hard link at log_file without writing through them', () => {
    const victim = join(dir, 'victim')
    writeFileSync(victim, 'precious\n')
    const cases: Array<{name: string; make: (path: string) => void; message: RegExp}> = [
      {make: (path) => symlinkSync(victim, path), message: /is a symbolic link: refused/, name: 'symlink'},
      {make: (path) => symlinkSync(join(dir, 'nowhere'), path), message: /is a symbolic link: refused/, name: 'dangling symlink'},
      {make: (path) => execFileSync('mkfifo', [path]), message: /not a regular file/, name: 'fifo'},
      {make: (path) => linkSync(victim, path), message: /hard links/, name: 'hard link'},
    ]
    for (const c of cases) {
      const path = join(dir, `${c.name.replace(' ', '-')}.log`)
      c.make(path)
      assert.throws(() => capture({file: path}), (error: unknown) => error instanceof H2KError && error.code === 'H2K_UNSAFE_PATH' && c.message.test(error.message), c.name)
    }
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n')
    assert.ok(!existsSync(join(dir, 'nowhere')), 'a dangling link is not created through')
  })

  it('a refused reopen (symlink planted after the rotation) keeps writing to the open file and says so', () => {
    const file = join(dir, 'daemon.log')
    const {log} = capture({file})
    log.log('info', 'test:before')
    renameSync(file, `${file}.1`)
    symlinkSync(join(dir, 'elsewhere'), file)
    log.reopen()
    log.log('info', 'test:after')
    log.close()
    const old = readFileSync(`${file}.1`, 'utf8')
    assert.match(old, /ERROR daemon:log-reopen-failed .*symbolic link/)
    assert.match(old, /test:after/)
    assert.ok(!existsSync(join(dir, 'elsewhere')))
  })

  it('the level: --log-level over log_level over verbose (0 warn, 1 and 2 info, 3 debug); log_format defaults to text', async () => {
    const config = join(dir, 'daemon.yaml')
    const cases = [
      {expect: 'info', flag: undefined, keys: ''},
      {expect: 'warn', flag: undefined, keys: 'verbose: 0\n'},
      {expect: 'info', flag: undefined, keys: 'verbose: 2\n'},
      {expect: 'debug', flag: undefined, keys: 'verbose: 3\n'},
      {expect: 'error', flag: undefined, keys: 'verbose: 3\nlog_level: error\n'},
      {expect: 'debug', flag: 'debug', keys: 'verbose: 0\nlog_level: error\n'},
    ] as const
    for (const c of cases) {
      writeFileSync(config, `command: daemon\nwatch_dir: in\noutput_dir: out\n${c.keys}`)
      const loaded = await loadDaemonConfig({config, 'log-level': c.flag})
      assert.equal(loaded.logLevel, c.expect, JSON.stringify(c))
      assert.equal(loaded.logFormat, 'text')
    }
    writeFileSync(config, 'command: daemon\nwatch_dir: in\noutput_dir: out\nlog_format: json\n')
    assert.equal((await loadDaemonConfig({config})).logFormat, 'json')
    writeFileSync(config, 'command: daemon\nwatch_dir: in\noutput_dir: out\nlog_format: xml\n')
    await assert.rejects(loadDaemonConfig({config}), (error: unknown) => error instanceof H2KError && error.code === 'H2K_JOB_INVALID')
  })
})
