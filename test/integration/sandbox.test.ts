import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type BlockdevSpec, H2KError} from '@hyper2kvm/plugin-api'
import {runTool} from '../../src/exec/run-tool.js'
import {convertImage} from '../../src/qemu/qemu-img.js'
import {killAll, type RunningDaemon, startDaemon, today, until, jobs} from '../helpers/daemon-process.js'
import {makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {type CliResult, leftovers, runCli, sha256} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const CASES = new URL('../hostile/sandbox/', import.meta.url)

interface SandboxCase {
  description: string
  finding: number
  expect: {code: string}
}

/** The CLI as a user runs it, with a chosen environment and, optionally, as another user (a `setpriv` prefix). */
const cli = (args: string[], options: {env?: NodeJS.ProcessEnv; as?: string[]} = {}): Promise<CliResult> => runCli(args, options)

describe('sandbox: qemu sees only what it was given', function () {
  this.timeout(180_000)
  let dir: string
  let cleanup: () => void
  let disk: string
  before(() => {
    ;({cleanup, dir} = makeTempDir())
    disk = makePatternedRaw(join(dir, 'disk.raw'))
  })
  after(() => cleanup())

  describe('hostile images, validation bypassed: the sandbox alone stops the host read', () => {
    for (const name of readdirSync(CASES).filter((entry) => existsSync(new URL(`${entry}/case.json`, CASES)))) {
      const spec = JSON.parse(readFileSync(new URL(`${name}/case.json`, CASES), 'utf8')) as SandboxCase
      it(`${name}: ${spec.description}`, async () => {
        const root = join(dir, name)
        const input = join(root, 'input')
        mkdirSync(join(root, 'secret'), {recursive: true})
        mkdirSync(input)
        const secret = `H2K-MARKER-${randomBytes(8).toString('hex')}`
        const marker = join(root, 'secret', 'marker.txt')
        writeFileSync(marker, `${secret}\n`.repeat(64))
        const {build} = (await import(new URL(`${name}/build.ts`, CASES).href)) as {build: (d: string, m: string) => Promise<{spec: BlockdevSpec}>}
        const built = await build(input, marker)
        const before = readdirSync(input).map((f) => sha256(join(input, f)))
        const request = (destination: string) => ({compress: false, compression: 'zstd' as const, destination, format: 'raw' as const, source: built.spec})

        // Sandboxed: qemu-img cannot even see the marker, so the conversion fails and copies nothing.
        const caged = join(root, 'sandboxed.raw')
        const error = await convertImage(request(caged)).then(
          () => undefined,
          (error: unknown) => error,
        )
        assert.ok(error instanceof H2KError, `the sandboxed conversion must fail, got ${String(error)}`)
        assert.equal(error.code, spec.expect.code, error.message)
        assert.match(error.message, /No such file or directory/)
        const everything = `${error.message}\n${JSON.stringify(error.details)}\n${existsSync(caged) ? readFileSync(caged, 'latin1') : ''}`
        assert.ok(!everything.includes(secret), 'the marker reached the output or the error')

        // The same call unsandboxed reads the host file: the case is live, and the sandbox is what stopped it.
        const bare = join(root, 'unsandboxed.raw')
        await convertImage(request(bare), {sandbox: false})
        assert.ok(readFileSync(bare, 'latin1').includes(secret), 'unsandboxed, qemu-img should have copied the marker (the case is not live)')
        assert.deepEqual(readdirSync(input).map((f) => sha256(join(input, f))), before, 'the input must be untouched')
      })
    }
  })

  it('a sandboxed tool cannot open a host path outside its view, unsandboxed it can', async () => {
    const hostFile = join(dir, 'host-only.raw')
    writeFileSync(hostFile, Buffer.alloc(4096))
    await assert.rejects(runTool('qemu-img', ['info', '-f', 'raw', hostFile], {sandbox: {readOnly: [], readWrite: []}}), (error: H2KError) => {
      assert.equal(error.code, 'H2K_TOOL_FAILED')
      assert.match(error.message, /No such file or directory/)
      return true
    })
    const {stdout, sandboxed} = await runTool('qemu-img', ['info', '-f', 'raw', hostFile], {sandbox: {readOnly: [hostFile], readWrite: []}})
    assert.equal(sandboxed, true)
    assert.match(stdout, /virtual size: 4 KiB/)
  })

  it('a tool killed by a signal inside the sandbox is reported with that signal', async () => {
    // bwrap reports a child killed by signal N as exit 128+N; the limits must still read as limits.
    const sandbox = {readOnly: [], readWrite: []}
    await assert.rejects(runTool('sh', ['-c', 'kill -SEGV $$'], {limits: {addressSpaceBytes: 1024 * 1024 * 1024, cpuSeconds: 30}, sandbox}), (error: H2KError) => {
      assert.equal(error.code, 'H2K_RESOURCE_LIMIT', error.message)
      assert.equal(error.details.signal, 'SIGSEGV')
      return true
    })
  })

  it('a plain convert runs sandboxed, says so in the report, and the output matches its input', async () => {
    const out = join(dir, 'out-sandboxed')
    const result = await cli(['convert', disk, '-o', out, '--no-fix', '--verify', '--json'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.json.sandbox, 'bwrap')
    assert.deepEqual(result.json.warnings, [])
    const report = JSON.parse(readFileSync(result.json.report, 'utf8'))
    assert.equal(report.sandbox, 'bwrap')
    assert.ok(sameContent(disk, 'raw', result.json.outputs[0].path, 'qcow2'), 'qemu-img compare: the output differs from the input')
  })

  it('--no-sandbox and a job file\'s sandbox: false run unsandboxed, reported and warned about', async () => {
    const out = join(dir, 'out-unsandboxed')
    const flag = await cli(['convert', disk, '-o', out, '--no-fix', '--no-sandbox', '--json'])
    assert.equal(flag.code, 0, flag.stderr)
    assert.equal(flag.json.sandbox, 'none')
    assert.deepEqual(flag.json.warnings.map((w: {code: string}) => w.code), ['SANDBOX_DISABLED'])
    assert.match(flag.stderr, /SANDBOX_DISABLED/)
    assert.ok(sameContent(disk, 'raw', flag.json.outputs[0].path, 'qcow2'))

    const job = join(dir, 'unsandboxed-job.yaml')
    writeFileSync(job, `input: ${disk}\noutput_dir: ${join(dir, 'out-job')}\nfix: false\nsandbox: false\n`)
    const fromJob = await cli(['convert', '--job', job, '--json'])
    assert.equal(fromJob.code, 0, fromJob.stderr)
    assert.equal(fromJob.json.sandbox, 'none')
  })

  it('without bubblewrap the job fails at once with H2K_SANDBOX_UNAVAILABLE; --no-sandbox still converts', async () => {
    // A PATH with every tool the conversion needs except bwrap.
    const bin = join(dir, 'bin-without-bwrap')
    mkdirSync(bin)
    for (const tool of ['qemu-img', 'qemu-io', 'setpriv', 'prlimit']) symlinkSync(`/usr/bin/${tool}`, join(bin, tool))
    const out = join(dir, 'out-no-bwrap')
    const refused = await cli(['convert', disk, '-o', out, '--no-fix', '--json'], {env: {PATH: bin}})
    assert.equal(refused.code, 6, refused.stderr)
    assert.equal(refused.json.error.code, 'H2K_SANDBOX_UNAVAILABLE')
    assert.match(refused.json.error.message, /bubblewrap \(bwrap\) is not installed/)
    assert.ok(refused.json.error.suggestions.some((s: string) => s.includes('--no-sandbox')))
    assert.ok(refused.json.error.suggestions.some((s: string) => s.includes('apt-get install bubblewrap')))
    assert.deepEqual(leftovers(out), [], 'nothing may be left in the output directory')

    const allowed = await cli(['convert', disk, '-o', out, '--no-fix', '--no-sandbox', '--json'], {env: {PATH: bin}})
    assert.equal(allowed.code, 0, allowed.stderr)
    assert.equal(allowed.json.sandbox, 'none')
  })

  it('works for an unprivileged user (user namespaces, no root)', async () => {
    const shared = join(dir, 'world')
    mkdirSync(join(shared, 'out'), {recursive: true})
    const input = makePatternedRaw(join(shared, 'guest.raw'))
    chmodSync(dir, 0o755)
    chmodSync(shared, 0o755)
    chmodSync(input, 0o644)
    chmodSync(join(shared, 'out'), 0o777)
    const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--']
    const result = await cli(['convert', input, '-o', join(shared, 'out'), '--no-fix', '--verify', '--json'], {as: nobody, env: {HOME: '/tmp'}})
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.json.sandbox, 'bwrap')
    assert.ok(sameContent(input, 'raw', result.json.outputs[0].path, 'qcow2'))
  })

  describe('the daemon: only its own configuration decides', () => {
    const daemons: RunningDaemon[] = []
    afterEach(() => killAll(daemons))
    const settledOne = (out: string) => (): boolean => jobs(out).some((j) => j.status === 'succeeded' || j.status === 'failed')

    it('a dropped job file\'s sandbox: false is ignored: the job runs sandboxed', async () => {
      const root = join(dir, 'daemon-default')
      // The workflow layout: the one where dropped job files are jobs.
      const inbox = join(root, 'flow', 'to_be_processed')
      const out = join(root, 'out')
      mkdirSync(inbox, {recursive: true})
      const config = join(root, 'daemon.yaml')
      writeFileSync(config, `workflow_mode: true\nworkflow_dir: ${join(root, 'flow')}\noutput_dir: ${out}\nfix: false\n`)
      const d = await startDaemon(['--config', config], out)
      daemons.push(d)
      assert.match(d.stderr(), /daemon:start .*sandbox=bwrap/)
      // Written elsewhere and renamed in, the job file first (it waits for the disk it names).
      writeFileSync(join(root, 'job.yaml'), 'name: dropped\ninput: dropped.raw\nsandbox: false\n')
      makePatternedRaw(join(root, 'dropped.raw'))
      renameSync(join(root, 'job.yaml'), join(inbox, 'job.yaml'))
      renameSync(join(root, 'dropped.raw'), join(inbox, 'dropped.raw'))
      await until('the job settled', settledOne(out), 60_000, d)
      assert.equal(jobs(out)[0]!.status, 'succeeded', d.stderr())
      const report = JSON.parse(readFileSync(join(out, today(), 'dropped', 'dropped.report.json'), 'utf8'))
      assert.equal(report.sandbox, 'bwrap')
      assert.deepEqual(report.warnings, [])
    })

    it('sandbox: false in the daemon config is logged at start and reported by every job', async () => {
      const root = join(dir, 'daemon-unsandboxed')
      const inbox = join(root, 'inbox')
      const out = join(root, 'out')
      mkdirSync(inbox, {recursive: true})
      const config = join(root, 'daemon.yaml')
      writeFileSync(config, `watch_dir: ${inbox}\noutput_dir: ${out}\nfix: false\nsandbox: false\n`)
      const d = await startDaemon(['--config', config], out)
      daemons.push(d)
      // Logged right after daemon:start, which is what startDaemon waits for: it may arrive in the next chunk.
      await until('the no-sandbox warning', () => /WARN daemon:no-sandbox/.test(d.stderr()), 5000, d)
      makePatternedRaw(join(root, 'plain.raw'))
      renameSync(join(root, 'plain.raw'), join(inbox, 'plain.raw'))
      await until('the job settled', settledOne(out), 60_000, d)
      assert.equal(jobs(out)[0]!.status, 'succeeded', d.stderr())
      const report = JSON.parse(readFileSync(join(out, today(), 'plain', 'plain.report.json'), 'utf8'))
      assert.equal(report.sandbox, 'none')
      assert.deepEqual(report.warnings.map((w: {code: string}) => w.code), ['SANDBOX_DISABLED'])
    })
  })
})
