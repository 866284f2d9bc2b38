import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, type Stats, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'

import {killAll, type RunningDaemon, startDaemon, today, until} from '../helpers/daemon-process.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/**
 * test/hostile/drops/<case>/case.json, run against real daemons: every file operation of a case is done by
 * a second, unprivileged user (uid 65534 through setpriv) against a daemon running as root and, for the
 * cases that list "user", as its own unprivileged user. Cases of one layout share a daemon; a bookkeeping
 * case (its directory pre-created as a symlink or a foreign directory) gets its own.
 */
type Layout = 'watch' | 'workflow' | 'manifest-workflow'
type As = 'root' | 'user'

interface Step {
  op: 'symlink' | 'write' | 'raw' | 'pause' | 'resume' | 'claimed' | 'succeeded' | 'error-file' | 'waiting'
  path?: string
  target?: string
  text?: string
  file?: string
  as?: string
}

interface Case {
  name: string
  description: string
  finding: number
  layout: Layout
  as: As[]
  bookkeeping?: {dir: string; kind: 'symlink' | 'dir'}
  steps?: Step[]
  expect: {code?: string; file?: string; untouched?: string[]; succeeds?: string[]; fails?: string[]; size_mb?: number; refused?: string}
}

const CORPUS = fileURLToPath(new URL('../hostile/drops/', import.meta.url))
const DROPPER_SCRIPT = fileURLToPath(new URL('../helpers/dropper.mjs', import.meta.url))
const DROPPER = {gid: 65534, uid: 65534}
const CASES: Case[] = readdirSync(CORPUS)
  .filter((n) => existsSync(join(CORPUS, n, 'case.json')))
  .sort()
  .map((name) => ({name, ...(JSON.parse(readFileSync(join(CORPUS, name, 'case.json'), 'utf8')) as Omit<Case, 'name'>)}))

/** The daemon's own unprivileged user (created like the e2e does). */
function daemonUser(): {uid: number; gid: number} {
  const user = 'h2k-hostile'
  try {
    execFileSync('id', [user], {stdio: 'ignore'})
  } catch {
    execFileSync('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', user])
  }
  return {gid: Number(execFileSync('id', ['-g', user], {encoding: 'utf8'})), uid: Number(execFileSync('id', ['-u', user], {encoding: 'utf8'}))}
}

interface Env {
  layout: Layout
  base: string
  root: string
  inbox: string
  out: string
  logFile: string
  config: string
  victim: string
  victimFiles: Map<string, string>
  marker: string
  goodRaw: string
  vars: Map<string, string>
  daemon?: RunningDaemon
}

const processingOf = (env: Env): string => join(env.root, env.layout === 'watch' ? '.processing' : 'processing')
const processedOf = (env: Env): string => join(env.root, env.layout === 'watch' ? '.processed' : 'processed', today())
const failedOf = (env: Env): string => (env.layout === 'watch' ? join(env.root, '.errors') : join(env.root, 'failed', today()))

function template(env: Env, text: string): string {
  return text.replace(/\{(\w+)\}/g, (whole, key: string) => env.vars.get(key) ?? whole)
}

/** Run file operations as the unprivileged dropper; paths are relative to the inbox unless absolute. */
function asDropper(env: Env, steps: Step[]): void {
  const ops = steps.map((s) => {
    const path = template(env, s.path!)
    const abs = path.startsWith('/') ? path : join(env.inbox, path)
    if (s.op === 'raw') return {from: env.goodRaw, op: 'copy', path: abs}
    if (s.op === 'symlink') return {op: 'symlink', path: abs, target: template(env, s.target!)}
    return {op: 'write', path: abs, text: template(env, s.text!)}
  })
  execFileSync('setpriv', [`--reuid=${DROPPER.uid}`, `--regid=${DROPPER.gid}`, '--clear-groups', '--', process.execPath, DROPPER_SCRIPT, JSON.stringify(ops)], {stdio: 'pipe'})
}

/** A temp tree the dropper can write into (the drop directory is 0777, no sticky bit: the worst case) and a 0700 victim directory. */
function makeEnv(dir: string, name: string, layout: Layout, owner: {uid: number; gid: number}): Env {
  const base = join(dir, name)
  const root = join(base, 'drop')
  const inbox = layout === 'watch' ? root : join(root, 'to_be_processed')
  mkdirSync(inbox, {recursive: true})
  chmodSync(base, 0o755)
  chmodSync(root, 0o777)
  chmodSync(inbox, 0o777)
  const out = join(base, 'out')
  const logDir = join(base, 'log')
  const victim = join(base, 'victim')
  for (const d of [out, logDir, victim]) {
    mkdirSync(d)
    chownSync(d, owner.uid, owner.gid)
  }
  chmodSync(victim, 0o700)
  const marker = `H2K-MARKER-${randomBytes(12).toString('hex')}`
  const victimFiles = new Map<string, string>([
    ['precious.raw', marker.padEnd(1024 * 1024, '#')],
    ['secret.yaml', `name: ${marker}\n${marker}: 1\ninput: ${marker}.raw\n`],
  ])
  for (const [file, content] of victimFiles) {
    writeFileSync(join(victim, file), content, {mode: 0o600})
    chownSync(join(victim, file), owner.uid, owner.gid)
  }
  const goodRaw = join(base, 'good.raw')
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', goodRaw, '1M'])
  execFileSync('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 64k', goodRaw], {stdio: 'pipe'})
  chmodSync(goodRaw, 0o644)
  const logFile = join(logDir, 'daemon.log')
  const layoutKeys = layout === 'watch' ? `watch_dir: ${root}` : layout === 'workflow' ? `workflow_mode: true\nworkflow_dir: ${root}` : `manifest_workflow_mode: true\nmanifest_workflow_dir: ${root}`
  const config = join(base, 'daemon.yaml')
  writeFileSync(config, `command: daemon\n${layoutKeys}\noutput_dir: ${out}\nlog_file: ${logFile}\nretry_policy:\n  enabled: false\n`)
  chmodSync(config, 0o644)
  const vars = new Map([
    ['date', today()],
    ['inbox', inbox],
    ['marker', marker],
    ['root', root],
    ['victim', victim],
  ])
  return {base, config, goodRaw, inbox, layout, logFile, marker, out, root, vars, victim, victimFiles}
}

async function start(env: Env, as: As, user: {uid: number; gid: number}, daemons: RunningDaemon[]): Promise<RunningDaemon> {
  const d = await startDaemon(['--config', env.config], env.out, as === 'user' ? user : undefined)
  daemons.push(d)
  env.daemon = d
  return d
}

/** The error file of `file` in the layout's failed directory (or its `<claim-id>/` subdirectory when the name was taken). */
function errorFileOf(env: Env, file: string): string | undefined {
  const dir = failedOf(env)
  const name = `${file}.error.json`
  if (existsSync(join(dir, name))) return join(dir, name)
  for (const sub of existsSync(dir) ? readdirSync(dir) : []) if (existsSync(join(dir, sub, name))) return join(dir, sub, name)
  return undefined
}

/** The daemon's log_file: with it set, the daemon's lines go there only (stderr has the start notice). */
const logOf = (env: Env): string => (existsSync(env.logFile) ? readFileSync(env.logFile, 'utf8') : '')

async function runSteps(env: Env, steps: Step[]): Promise<void> {
  const batch: Step[] = []
  const flush = (): void => {
    if (batch.length > 0) asDropper(env, batch.splice(0))
  }
  for (const step of steps) {
    if (step.op === 'symlink' || step.op === 'write' || step.op === 'raw') {
      batch.push(step)
      continue
    }
    flush()
    const file = step.file ? template(env, step.file) : ''
    if (step.op === 'pause' || step.op === 'resume') assert.equal((await runCli(['ctl', step.op, '--output-dir', env.out])).code, 0)
    else if (step.op === 'claimed') {
      const id = await until(`${file} claimed`, () => (existsSync(processingOf(env)) ? readdirSync(processingOf(env)).find((i) => existsSync(join(processingOf(env), i, file))) : undefined), 15_000, env.daemon)
      env.vars.set(step.as!, join(env.layout === 'watch' ? '.processing' : '../processing', id))
    } else if (step.op === 'succeeded') await until(`${file} processed`, () => existsSync(join(processedOf(env), file)), 20_000, env.daemon)
    else if (step.op === 'error-file') await until(`${file} error file`, () => errorFileOf(env, file), 15_000, env.daemon)
    else if (step.op === 'waiting') await until(`${file} waiting for the files it names`, () => logOf(env).includes(`file:waiting file=${file} `), 15_000, env.daemon)
  }
  flush()
}

/** Undefined for what is gone: the daemon is still running while it is walked. */
function ifPresent<T>(read: () => T): T | undefined {
  try {
    return read()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

function walk(dir: string, visit: (path: string, info: Stats) => void): void {
  for (const name of ifPresent(() => readdirSync(dir)) ?? []) {
    const path = join(dir, name)
    // Gone since readdir: a file the daemon replaces atomically (state_dir/stats.json's temporary file, every 5 s).
    const info = lstatSync(path, {throwIfNoEntry: false})
    if (info === undefined) continue
    visit(path, info)
    if (info.isDirectory()) walk(path, visit)
  }
}

const LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (ERROR|WARN|INFO|DEBUG) [\w:-]+( |$)/

/** What every case of a daemon must leave true: no marker anywhere we write, nothing half-done, modes, one line per event, no forged rows. */
async function assertNoLeaks(env: Env, errorRootIsSymlink = false): Promise<void> {
  const marker = Buffer.from(env.marker)
  const errorFiles: string[] = []
  for (const top of [env.root, env.out, join(env.base, 'log')]) {
    walk(top, (path, info) => {
      if (!info.isFile()) return
      assert.ok(!(ifPresent(() => readFileSync(path)) ?? Buffer.alloc(0)).includes(marker), `the marker leaked into ${path}`)
      assert.ok(!path.endsWith('.part'), `a .part is left: ${path}`)
      if (path.endsWith('.error.json')) {
        errorFiles.push(path)
        assert.equal(info.mode & 0o777, 0o640, `${path} is mode ${(info.mode & 0o777).toString(8)}`)
        assert.ok(!readFileSync(path, 'utf8').includes(env.victim), `${path} records where a symlink points`)
      }
    })
  }
  walk(join(env.out, today()), (path, info) => {
    assert.ok(!/\.hyper2kvm-/.test(path), `a work directory is left: ${path}`)
    assert.ok(!/\p{Cc}/u.test(path), `an output path carries a control character: ${JSON.stringify(path)}`)
    if (info.isFile()) assert.equal(info.mode & 0o004, 0, `${path} is world-readable`)
  })
  const stderr = env.daemon!.stderr()
  assert.ok(!stderr.includes(env.marker), 'the marker leaked into the daemon output')
  const log = readFileSync(env.logFile, 'utf8')
  assert.equal(lstatSync(env.logFile).mode & 0o007, 0, 'daemon.log is not world-readable')
  for (const line of log.split('\n').slice(0, -1)) assert.match(line, LOG_LINE, `a forged or split log line: ${JSON.stringify(line)}`)
  assert.ok(!log.includes('\u001b'), 'an escape sequence reached the log')
  // One row per error file: a newline in a dropped name cannot forge one.
  const list = await runCli(['errors', 'list', '--config', env.config])
  if (errorRootIsSymlink) {
    // The errors commands do not follow a symlinked error directory either.
    assert.match(list.stderr, /H2K_UNSAFE_PATH/, list.stderr)
    assert.ok(!list.stdout.includes(env.victim) && !list.stderr.includes(env.marker))
  } else {
    assert.equal(list.code, 0, list.stderr)
    const lines = list.stdout.split('\n').filter((l) => l !== '')
    const rows = errorFiles.length === 0 ? lines.slice(0, -1) : lines.slice(1, -1)
    assert.equal(rows.length, errorFiles.length, list.stdout)
    for (const row of rows) assert.match(row, /^\d{4}-\d\d-\d\dT\S+Z {2}/, `a forged row: ${JSON.stringify(row)}`)
  }
  // The victim directory: the same two files, untouched.
  assert.deepEqual(readdirSync(env.victim).sort(), [...env.victimFiles.keys()].sort(), 'something landed in (or left) the victim directory')
  for (const [file, content] of env.victimFiles) assert.equal(readFileSync(join(env.victim, file), 'utf8'), content)
}

async function stop(env: Env): Promise<void> {
  const d = env.daemon!
  d.child.kill('SIGTERM')
  assert.equal(await Promise.race([d.exited, sleep(20_000).then(() => 'timeout')]), 0, d.stderr())
}

describe('hostile drops: the drop directory cannot be turned against the host (test/hostile/drops)', function () {
  this.timeout(120_000)
  let dir: string
  let cleanup: () => void
  let user: {uid: number; gid: number}
  const daemons: RunningDaemon[] = []
  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-hostile-drops-'))
    chmodSync(dir, 0o755)
    user = daemonUser()
  })
  after(async () => {
    await killAll(daemons)
    cleanup()
  })

  for (const as of ['root', 'user'] as const) {
    const owner = (): {uid: number; gid: number} => (as === 'root' ? {gid: 0, uid: 0} : user)

    // Bookkeeping directories pre-created as symlinks (or foreign directories): one daemon each.
    for (const c of CASES.filter((k) => k.bookkeeping && k.as.includes(as))) {
      it(`[daemon as ${as}] ${c.name}: ${c.description}`, async () => {
        const env = makeEnv(dir, `${as}-${c.name}`, c.layout, owner())
        const bk = join(env.root, c.bookkeeping!.dir)
        asDropper(env, [c.bookkeeping!.kind === 'symlink' ? {op: 'symlink', path: bk, target: env.victim} : {op: 'write', path: join(bk, 'keep'), text: 'mine\n'}])
        const d = await start(env, as, user, daemons)
        if (c.layout === 'manifest-workflow') {
          const manifest = {pipeline: {convert: {output_format: 'qcow2'}, load: {source_path: 'disks/good.raw', source_type: 'raw'}}, version: '1.0'}
          asDropper(env, [
            {op: 'raw', path: 'disks/good.raw'},
            {op: 'write', path: 'good.json', text: JSON.stringify(manifest)},
            {op: 'write', path: 'authorized_keys.json', text: 'ssh-ed25519 AAAA attacker@elsewhere\n'},
          ])
        } else {
          asDropper(env, [
            {op: 'raw', path: 'good.raw'},
            {op: 'write', path: 'authorized_keys.vmdk', text: 'ssh-ed25519 AAAA attacker@elsewhere\n'},
          ])
        }
        // Several stability rounds (100 ms each; main claimed within them): nothing is claimed, nothing lands in the target.
        await sleep(2000)
        assert.deepEqual(readdirSync(env.victim).sort(), [...env.victimFiles.keys()].sort(), `something landed in the directory ${bk} points to`)
        for (const f of c.layout === 'manifest-workflow' ? ['good.json', 'authorized_keys.json', 'disks/good.raw'] : ['good.raw', 'authorized_keys.vmdk']) {
          assert.ok(existsSync(join(env.inbox, f)), `${f} was claimed although ${bk} is refused`)
        }
        // Refused loudly: an ERROR line naming the directory and why, and a ctl status warning.
        const reason = c.bookkeeping!.kind === 'symlink' ? 'is a symbolic link' : `is owned by uid ${DROPPER.uid}`
        await until('the refusal in the log', () => logOf(env).includes(`ERROR bookkeeping:refused dir=${bk} ${reason}`), 5000, d)
        const status = await runCli(['ctl', 'status', '--json', '--output-dir', env.out])
        assert.equal(status.code, 0, status.stderr)
        assert.ok(((status.json.warnings ?? []) as string[]).some((w) => w.startsWith(`${bk} `)), JSON.stringify(status.json))
        assert.ok(lstatSync(bk).isSymbolicLink() === (c.bookkeeping!.kind === 'symlink'), 'the refused entry is left as it is')
        await stop(env)
        await assertNoLeaks(env, c.bookkeeping!.kind === 'symlink' && ['.errors', 'failed'].includes(c.bookkeeping!.dir))
      })
    }

    // Attacks on a healthy daemon: one daemon per layout, the cases one after another.
    for (const layout of ['watch', 'workflow', 'manifest-workflow'] as const) {
      const cases = CASES.filter((k) => !k.bookkeeping && k.layout === layout && k.as.includes(as))
      if (cases.length === 0) continue
      describe(`[daemon as ${as}] ${layout} layout, shared daemon`, () => {
        let env: Env
        before(async () => {
          env = makeEnv(dir, `${as}-${layout}-shared`, layout, owner())
          await start(env, as, user, daemons)
        })
        for (const c of cases) {
          it(`${c.name}: ${c.description}`, async () => {
            await runSteps(env, c.steps ?? [])
            const {expect} = c
            if (expect.code) {
              const path = await until(`${expect.file} error file`, () => errorFileOf(env, expect.file!), 20_000, env.daemon)
              const record = JSON.parse(readFileSync(path, 'utf8')) as {error_code: string; file_size_mb: number; error: string}
              assert.equal(record.error_code, expect.code, JSON.stringify(record))
              if (expect.size_mb !== undefined) assert.equal(record.file_size_mb, expect.size_mb)
              // `ctl job` shows what the store keeps: never where a refused symlink points, nor its target's size.
              const job = await runCli(['ctl', 'job', (record as unknown as {job_id: string}).job_id, '--output-dir', env.out, '--json'])
              assert.equal(job.code, 0, job.stderr)
              assert.ok(!job.stdout.includes(env.victim), job.stdout)
              if (expect.size_mb !== undefined) assert.equal(job.json.definition.size, 0)
            }
            for (const file of expect.succeeds ?? []) await until(`${JSON.stringify(file)} processed`, () => existsSync(join(processedOf(env), file)), 30_000, env.daemon)
            for (const file of expect.fails ?? []) await until(`${JSON.stringify(file)} failed`, () => errorFileOf(env, file), 30_000, env.daemon)
            for (const path of expect.untouched ?? []) assert.ok(existsSync(template(env, path)), `${template(env, path)} was moved`)
            // Each case on its own: no marker, no leftovers, modes, one line per event, no forged rows.
            await assertNoLeaks(env)
          })
        }
        it('leaves no marker, no .part, no work directory; 0640 error files, a private log, one line per event, no forged rows', async () => {
          await stop(env)
          await assertNoLeaks(env)
        })
      })
    }
  }
})
