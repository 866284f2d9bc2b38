import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {jobOf, killAll, type RunningDaemon, startDaemon, today, until} from '../helpers/daemon-process.js'
import {makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {linkTestPlugins as link, userEnv} from '../helpers/user-plugins.js'

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {version: string}).version

/**
 * The host's plugin policy, through the real CLI with third-party plugins linked into a user's data dir:
 * stage options (flag > job file > configuration, daemon config), hook time limit, failed plugins (exit
 * code, --json), unknown `after:` warnings, and the loader message when the plugin of an extension failed.
 */
describe('plugin policy and stage options (real CLI, linked third-party plugins)', function () {
  this.timeout(120_000)
  let dir: string
  let cleanup: () => void
  let raw: string
  /** options-echo: a verifier with an options schema that records ctx.options; a fixer with after: ["fstabb"]. */
  let good: NodeJS.ProcessEnv
  /** hanging (its hook never answers) and broken-xyz (declares .xyz, its hook throws). */
  let bad: NodeJS.ProcessEnv
  const daemons: RunningDaemon[] = []

  before(async () => {
    ;({cleanup, dir} = makeTempDir('h2k-policy-'))
    raw = makePatternedRaw(join(dir, 'disk.raw'))
    good = userEnv(join(dir, 'good'))
    bad = userEnv(join(dir, 'bad'))
    await link(good, 'options-echo')
    await link(bad, 'hanging', 'broken-xyz')
  })
  afterEach(() => killAll(daemons))
  after(() => cleanup())

  it('-v and --version print the version on every command', async () => {
    for (const args of [['convert', '-v'], ['plugins', '--version'], ['daemon', '-v'], ['ctl', 'status', '-v']]) {
      const result = await runCli(args, {env: good})
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
      assert.match(result.stdout, new RegExp(`^hyper2kvm/${VERSION.replaceAll('.', '\\.')} `), args.join(' '))
    }
  })

  it('plugins: all loaded → exit 0; the stage with options is marked, the unknown after: is a PLUGIN_AFTER_UNKNOWN warning', async () => {
    const result = await runCli(['plugins', '--json'], {env: good})
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(result.json.failed, [])
    const echo = result.json.plugins.find((p: {name: string}) => p.name === 'h2k-test-options-echo')
    assert.equal(echo.ok, true)
    assert.equal(echo.stages.find((s: {id: string}) => s.id === 'verifier:options-echo').options, true)
    assert.deepEqual(echo.warnings.map((w: {code: string; stage: string}) => [w.code, w.stage]), [['PLUGIN_AFTER_UNKNOWN', 'fixer:after-typo']])
    const human = await runCli(['plugins'], {env: good})
    assert.match(human.stdout, /warning PLUGIN_AFTER_UNKNOWN: Stage fixer:after-typo .* after: "fstabb"/)
  })

  it('convert: stage options from --config < --job < --stage-option reach the stage as ctx.options (defaults applied); the after: warning is in the report', async () => {
    const config = join(dir, 'config.yaml')
    writeFileSync(config, 'stage_options:\n  verifier:options-echo:\n    greeting: from-config\n    label: from-config\n    count: 1\n')
    const job = join(dir, 'job.yaml')
    writeFileSync(job, `input: ${raw}\noutput_dir: out-options\nstage_options:\n  verifier:options-echo:\n    greeting: from-job\n    count: 2\n`)
    const result = await runCli(['convert', '--config', config, '--job', job, '--stage-option', 'verifier:options-echo.count=3', '--stage-option', 'verifier:options-echo.tags=["x","y"]', '--no-fix', '--json'], {cwd: dir, env: good})
    assert.equal(result.code, 0, result.stdout + result.stderr)
    const expected = {count: 3, greeting: 'from-job', label: 'from-config', mode: 'quiet', tags: ['x', 'y']}
    assert.deepEqual(result.json.verification['options-echo'], expected)
    const report = JSON.parse(readFileSync(result.json.report, 'utf8'))
    assert.deepEqual(report.verification['options-echo'], expected)
    assert.ok(report.warnings.some((w: {code: string; stage: string}) => w.code === 'PLUGIN_AFTER_UNKNOWN' && w.stage === 'fixer:after-typo'), JSON.stringify(report.warnings))
    assert.ok(sameContent(result.json.outputs[0].path, 'qcow2', raw, 'raw'))
  })

  it('convert: refused options stop the job before anything is created: H2K_STAGE_OPTIONS_INVALID with file:line:column, the value not quoted', async () => {
    const job = join(dir, 'bad-job.yaml')
    writeFileSync(job, `input: ${raw}\noutput_dir: out-refused\nstage_options:\n  verifier:options-echo:\n    count: hunter2\n  fixer:fstabb: {a: 1}\n`)
    const result = await runCli(['convert', '--job', job, '--no-fix', '--json'], {cwd: dir, env: good})
    assert.equal(result.code, 2, result.stdout + result.stderr)
    assert.equal(result.json.error.code, 'H2K_STAGE_OPTIONS_INVALID')
    assert.ok(result.json.error.message.includes(`${job}:5:5: verifier:options-echo.count: must be integer`), result.json.error.message)
    assert.ok(result.json.error.message.includes(`${job}:6:3: no stage fixer:fstabb is registered`), result.json.error.message)
    assert.ok(!result.stdout.includes('hunter2'))
    assert.ok(!existsSync(join(dir, 'out-refused')), 'nothing was created')
    // validate checks them against the installed stages too, without converting.
    const validate = await runCli(['validate', job, '--json'], {env: good})
    assert.equal(validate.code, 2, validate.stdout)
    assert.equal(validate.json.error.code, 'H2K_STAGE_OPTIONS_INVALID')
    assert.ok(validate.json.error.message.includes(`${job}:5:5: verifier:options-echo.count: must be integer`), validate.json.error.message)
    // The same from the command line: the flag is named instead of a file position.
    const flag = await runCli(['convert', raw, '-o', join(dir, 'out-refused'), '--stage-option', 'verifier:options-echo.mode=shouty', '--no-fix', '--json'], {env: good})
    assert.equal(flag.json.error.code, 'H2K_STAGE_OPTIONS_INVALID')
    assert.match(flag.json.error.message, /--stage-option verifier:options-echo\.mode: verifier:options-echo\.mode: expected one of "quiet", "loud"/)
  })

  it('batch: one job with refused options → no job runs (exit 2)', async () => {
    const batch = join(dir, 'batch.yaml')
    writeFileSync(batch, `output_dir: out-batch\njobs:\n  - input: ${raw}\n    name: first\n  - input: ${raw}\n    name: second\n    stage_options:\n      verifier:options-echo: {count: -4}\n`)
    const result = await runCli(['batch', batch, '--json'], {cwd: dir, env: good})
    assert.equal(result.code, 2, result.stdout + result.stderr)
    assert.equal(result.json.error.code, 'H2K_STAGE_OPTIONS_INVALID')
    assert.ok(result.json.error.message.includes(`${batch}:8:31: verifier:options-echo.count: must be >= 0`), result.json.error.message)
    assert.ok(!existsSync(join(dir, 'out-batch')), 'the valid first job did not run either')
  })

  it('daemon: the config\'s stage_options reach every job (here a dropped disk); refused ones stop the start', async () => {
    const root = join(dir, 'daemon')
    mkdirSync(join(root, 'queue'), {recursive: true})
    const config = join(root, 'daemon.yaml')
    writeFileSync(config, 'command: daemon\nwatch_dir: queue\noutput_dir: out\nstage_options:\n  verifier:options-echo:\n    label: from-daemon\n')
    const saved = {...process.env}
    Object.assign(process.env, good)
    try {
      const d = await startDaemon(['--config', config], join(root, 'out'))
      daemons.push(d)
      execFileSync('cp', ['--sparse=always', raw, join(root, 'queue', 'alpha.raw')])
      await until('alpha done', () => jobOf(join(root, 'out'), 'alpha.raw', 'succeeded'), 60_000, d)
      const report = JSON.parse(readFileSync(join(root, 'out', today(), 'alpha', 'alpha.report.json'), 'utf8'))
      assert.deepEqual(report.verification['options-echo'], {label: 'from-daemon', mode: 'quiet'})
      d.child.kill('SIGTERM')
      assert.equal(await d.exited, 0)
    } finally {
      // Put the keys back on the real environment: replacing process.env with a copy would leave them in it
      // (a Worker clones the real one) and detach every later assignment from child threads.
      for (const key of Object.keys(good)) {
        if (saved[key] === undefined) delete process.env[key]
        else process.env[key] = saved[key]
      }
    }
    writeFileSync(config, 'command: daemon\nwatch_dir: queue\noutput_dir: out2\nstage_options:\n  verifier:options-echo:\n    label: [1]\n')
    const refused = await runCli(['daemon', '--config', config, '--json'], {env: good})
    assert.equal(refused.code, 2, refused.stderr)
    assert.ok(refused.json.error.message.includes(`${config}:6:5: verifier:options-echo.label: must be string`), refused.json.error.message)
    assert.ok(!existsSync(join(root, 'out2')), 'the daemon did not start')
  })

  it('a hook that never answers and one that throws: plugins lists both FAILED (exit 9) within the time limit; convert and inspect of a raw still work and say so; .xyz names its failed plugin', async () => {
    const t0 = Date.now()
    // In parallel: each run waits out the hanging hook's 10 s limit once.
    const [listing, convert, xyz, inspect] = await Promise.all([
      runCli(['plugins', '--json'], {env: bad}),
      runCli(['convert', raw, '-o', join(dir, 'out-bad'), '--no-fix', '--json'], {env: bad}),
      (async () => {
        const input = join(dir, 'disk.xyz')
        writeFileSync(input, Buffer.alloc(64 * 1024, 0x5a))
        return runCli(['convert', input, '-o', join(dir, 'out-xyz'), '--no-fix', '--json'], {env: bad})
      })(),
      // inspect loads the registry the same way (it used to say nothing about failed plugins).
      runCli(['inspect', raw, '--json'], {env: bad}),
    ])
    assert.ok(Date.now() - t0 < 40_000, `took ${Date.now() - t0} ms`)

    assert.equal(listing.code, 9, listing.stderr)
    assert.deepEqual(listing.json.failed, ['h2k-test-broken-xyz', 'h2k-test-hanging'])
    const byName = new Map(listing.json.plugins.map((p: {name: string}) => [p.name, p]))
    const hanging = byName.get('h2k-test-hanging') as {ok: boolean; errors: Array<{code: string; message: string}>}
    assert.equal(hanging.ok, false)
    assert.deepEqual(hanging.errors, [{code: 'H2K_PLUGIN_FAILED', message: 'Plugin h2k-test-hanging failed to load: its hyper2kvm:register hook did not answer within 10 s'}])
    const broken = byName.get('h2k-test-broken-xyz') as {errors: Array<{code: string; message: string}>}
    assert.deepEqual(broken.errors, [{code: 'H2K_PLUGIN_FAILED', message: 'Plugin h2k-test-broken-xyz failed to load: its hyper2kvm:register hook failed: cannot open libxyz.so.1: no such file'}])
    assert.ok((byName.get('@hyper2kvm/plugin-generic') as {ok: boolean}).ok)

    assert.equal(convert.code, 0, convert.stdout + convert.stderr)
    assert.match(convert.stderr, /warning H2K_PLUGIN_FAILED: Plugin h2k-test-hanging failed to load/)
    assert.ok(sameContent(convert.json.outputs[0].path, 'qcow2', raw, 'raw'))

    assert.equal(inspect.code, 0, inspect.stdout + inspect.stderr)
    assert.match(inspect.stderr, /warning H2K_PLUGIN_FAILED: Plugin h2k-test-broken-xyz failed to load/)

    assert.equal(xyz.code, 9, xyz.stdout)
    assert.equal(xyz.json.error.code, 'H2K_PLUGIN_FAILED')
    assert.equal(xyz.json.error.message, 'No loader recognises disk.xyz: the plugin that reads .xyz, h2k-test-broken-xyz, failed to load: its hyper2kvm:register hook failed: cannot open libxyz.so.1: no such file')
  })

  it('a hook that never answers and keeps a timer running: the command still ends when it is done (it used to wait for that timer forever)', async () => {
    const stuck = userEnv(join(dir, 'stuck'))
    await link(stuck, 'hanging-timer')
    let pid = 0
    let killed = false
    const started = Date.now()
    const watchdog = setTimeout(() => {
      killed = true
      process.kill(pid, 'SIGKILL')
    }, 40_000)
    try {
      const result = await runCli(['inspect', raw, '--json'], {env: stuck, onSpawn: (p) => (pid = p)})
      assert.equal(killed, false, `inspect was still running ${Date.now() - started} ms after it started; stdout: ${result.stdout.slice(0, 200)}`)
      assert.equal(result.code, 0, result.stderr)
      assert.match(result.stderr, /warning H2K_PLUGIN_FAILED: Plugin h2k-test-hanging-timer failed to load: its hyper2kvm:register hook did not answer within 10 s/)
      assert.equal(result.json.status, 'inspected')
    } finally {
      clearTimeout(watchdog)
    }
  })
})
