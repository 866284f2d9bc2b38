import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {convertFixture, makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {CLI, leftovers, runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const parts = (dir: string): string[] => leftovers(dir).filter((f) => f.endsWith('.part') || f.startsWith('.hyper2kvm-'))

/** `batch`, `validate`, `convert --job` and manifests through the real CLI, on small real disks. */
describe('job files through the CLI: batch, validate, convert --job, manifests', () => {
  let dir: string
  let cleanup: () => void
  let raw: string
  let qcow2: string
  let broken: string
  before(() => {
    ;({cleanup, dir} = makeTempDir())
    mkdirSync(join(dir, 'vms'))
    raw = makePatternedRaw(join(dir, 'vms', 'alpha.raw'))
    qcow2 = convertFixture(raw, join(dir, 'vms', 'beta.qcow2'), 'qcow2')
    broken = join(dir, 'vms', 'gamma.vmdk')
    writeFileSync(broken, '')
  })
  after(() => cleanup())

  it('runs three jobs, one broken: two outputs, the summary and exit code say one failed, no .part left', async () => {
    const file = join(dir, 'batch.yaml')
    writeFileSync(file, 'output_dir: out1\nrestrict_inputs_to: vms\njobs:\n  - input: vms/alpha.raw\n  - input: vms/beta.qcow2\n    output_format: raw\n  - input: vms/gamma.vmdk\n')
    const result = await runCli(['batch', file, '--concurrency', '2', '--json'])
    assert.equal(result.code, 1, result.stderr)
    assert.equal(result.json.succeeded, 2)
    assert.equal(result.json.failed, 1)
    const byName = Object.fromEntries(result.json.jobs.map((j: {name: string}) => [j.name, j]))
    assert.equal(byName.alpha.status, 'succeeded')
    assert.deepEqual(byName.alpha.outputs, [join(dir, 'out1', 'alpha.qcow2')])
    assert.equal(byName.beta.status, 'succeeded')
    assert.equal(byName.gamma.status, 'failed')
    assert.equal(byName.gamma.error.code, 'H2K_INPUT_EMPTY')
    assert.ok(byName.alpha.duration_ms >= 0)
    assert.ok(sameContent(join(dir, 'out1', 'alpha.qcow2'), 'qcow2', raw, 'raw'))
    assert.ok(sameContent(join(dir, 'out1', 'beta.raw'), 'raw', raw, 'raw'))
    assert.deepEqual(leftovers(join(dir, 'out1')).sort(), ['alpha.qcow2', 'alpha.report.json', 'beta.raw', 'beta.report.json'])
    // Progress is on stderr, one prefixed line per step when stderr is not a terminal.
    assert.match(result.stderr, /^\[alpha\] +\[convert\] converter:qemu-img/m)
    assert.match(result.stderr, /^\[gamma\] +failed H2K_INPUT_EMPTY/m)
  })

  it('draws listr2 lists (batch → job → phases) when stderr is a terminal', () => {
    const file = join(dir, 'tty.yaml')
    writeFileSync(file, 'output_dir: out-tty\njobs:\n  - input: vms/alpha.raw\n  - input: vms/gamma.vmdk\n')
    // `script` gives the CLI a pseudo-terminal.
    const run = spawnSync('script', ['-qec', `stty cols 120 rows 40; ${process.execPath} ${CLI} batch ${file}`, '/dev/null'], {encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}, timeout: 60_000})
    const screen = run.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '\n')
    assert.equal(run.status, 1, screen)
    assert.match(screen, /✔ alpha/)
    assert.match(screen, /gamma: H2K_INPUT_EMPTY/)
    assert.match(screen, /✖ Load input failed/)
    assert.match(screen, /^gamma +failed .*H2K_INPUT_EMPTY/m)
    assert.ok(!/^\[alpha\]/m.test(screen), 'no plain lines in a terminal')
  })

  it('prints a summary table without --json', async () => {
    const file = join(dir, 'table.yaml')
    writeFileSync(file, 'output_dir: out2\njobs:\n  - input: vms/alpha.raw\n  - input: vms/gamma.vmdk\n')
    const result = await runCli(['batch', file, '--no-progress'])
    assert.equal(result.code, 1)
    assert.match(result.stdout, /^JOB +STATUS +DURATION +OUTPUT +ERROR/m)
    assert.match(result.stdout, /^alpha +succeeded .*alpha\.qcow2/m)
    assert.match(result.stdout, /^gamma +failed .*H2K_INPUT_EMPTY$/m)
    assert.match(result.stdout, /1 succeeded, 1 failed/)
  })

  it('stops at the first failure with continue_on_error: false (later jobs are skipped), and --continue-on-error overrides', async () => {
    const file = join(dir, 'stop.yaml')
    writeFileSync(file, 'output_dir: out3\ncontinue_on_error: false\njobs:\n  - input: vms/gamma.vmdk\n  - input: vms/alpha.raw\n')
    const stopped = await runCli(['batch', file, '--json'])
    assert.equal(stopped.code, 1)
    assert.deepEqual(stopped.json.jobs.map((j: {status: string}) => j.status), ['failed', 'skipped'])
    assert.deepEqual(parts(join(dir, 'out3')), [])
    assert.ok(!existsSync(join(dir, 'out3', 'alpha.qcow2')))
    const forced = await runCli(['batch', file, '--json', '--continue-on-error'])
    assert.deepEqual(forced.json.jobs.map((j: {status: string}) => j.status), ['failed', 'succeeded'])
  })

  it('exits 0 when every job succeeded', async () => {
    const file = join(dir, 'ok.json')
    writeFileSync(file, JSON.stringify({jobs: [{input: 'vms/alpha.raw'}, {input: 'vms/beta.qcow2'}], output_dir: 'out4'}))
    const result = await runCli(['batch', file, '--json'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.json.succeeded, 2)
  })

  const refusals: Array<{name: string; text: string; code: string; exit: number; message: RegExp}> = [
    {code: 'H2K_JOB_INVALID', exit: 2, message: /bad\.yaml:3:20: jobs\[0\]\.output_format: expected one of qcow2, raw, vdi/, name: 'an unknown output_format', text: 'output_dir: never\njobs:\n  - output_format: vmdk\n    input: vms/alpha.raw\n  - input: vms/beta.qcow2\n'},
    {code: 'H2K_JOB_INVALID', exit: 2, message: /duplicate job name "alpha"/, name: 'duplicate job names', text: 'output_dir: never\njobs:\n  - input: vms/alpha.raw\n  - input: vms/alpha.raw\n'},
    {code: 'H2K_UNSAFE_PATH', exit: 4, message: /outside restrict_inputs_to/, name: 'an input escaping restrict_inputs_to with ..', text: 'output_dir: never\nrestrict_inputs_to: vms\njobs:\n  - input: vms/alpha.raw\n  - input: vms/../batch.yaml\n'},
    {code: 'H2K_JOB_INVALID', exit: 2, message: /did you mean "output_format"/, name: 'an unknown key', text: 'output_dir: never\njobs:\n  - input: vms/alpha.raw\n    outptu_format: raw\n'},
  ]
  for (const r of refusals) {
    it(`refuses ${r.name} before any conversion (validate and batch agree)`, async () => {
      const file = join(dir, 'bad.yaml')
      writeFileSync(file, r.text)
      const result = await runCli(['batch', file, '--json'])
      assert.equal(result.code, r.exit, result.stdout + result.stderr)
      assert.equal(result.json.error.code, r.code)
      assert.match(result.json.error.message, r.message)
      assert.ok(!existsSync(join(dir, 'never')), 'nothing written')
      const validated = await runCli(['validate', file, '--json'])
      assert.equal(validated.code, r.exit)
      assert.equal(validated.json.error.code, r.code)
    })
  }

  it('validate prints the planned jobs', async () => {
    const file = join(dir, 'valid.yaml')
    writeFileSync(file, 'output_dir: out5\njobs:\n  - input: vms/alpha.raw\n    name: web01\n')
    const result = await runCli(['validate', file, '--json'])
    assert.equal(result.code, 0)
    assert.equal(result.json.kind, 'batch')
    assert.deepEqual(result.json.jobs, [{format: 'qcow2', input: raw, name: 'web01', output_dir: join(dir, 'out5')}])
  })

  it('convert --job takes the settings from the file; flags given on the command line win', async () => {
    const file = join(dir, 'vms', 'one.yaml')
    writeFileSync(file, 'input: alpha.raw\noutput_dir: ../out6\nname: single\noutput_format: vdi\n')
    const result = await runCli(['convert', '--job', file, '--format', 'raw', '--json'])
    assert.equal(result.code, 0, result.stdout + result.stderr)
    assert.deepEqual(leftovers(join(dir, 'out6')).sort(), ['single.raw', 'single.report.json'])
    const missing = await runCli(['convert', '--json'])
    assert.equal(missing.code, 2)
    assert.equal(missing.json.error.code, 'H2K_USAGE')
  })

  it('runs a manifest v1.0 as one job and writes <manifest>.report.json next to it', async () => {
    const file = join(dir, 'vm-manifest.json')
    const manifest = {
      pipeline: {
        convert: {compress: true, output_dir: 'out7', output_format: 'qcow2'},
        fix: {fstab: {mode: 'stabilize-all'}, grub: {enabled: true}, initramfs: {drivers: ['virtio_blk'], regenerate: true}},
        inspect: {enabled: true},
        load: {source_path: 'vms/beta.qcow2', source_type: 'qcow2'},
        validate: {compare: true, enabled: true},
      },
      version: '1.0',
    }
    writeFileSync(file, JSON.stringify(manifest))
    const result = await runCli(['batch', file, '--json'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.json.kind, 'manifest')
    assert.equal(result.json.report, join(dir, 'vm-manifest.report.json'))
    const report = JSON.parse(readFileSync(join(dir, 'vm-manifest.report.json'), 'utf8'))
    assert.equal(report.version, '1.0')
    assert.equal(report.status, 'succeeded')
    assert.equal(report.result.outputs[0].path, join(dir, 'out7', 'beta.qcow2'))
    assert.equal(report.result.outputs[0].compression, 'zstd')
    assert.ok(sameContent(join(dir, 'out7', 'beta.qcow2'), 'qcow2', raw, 'raw'))

    writeFileSync(file, JSON.stringify({...manifest, version: '0.9'}))
    const wrong = await runCli(['batch', file, '--json'])
    assert.equal(wrong.code, 2)
    assert.match(wrong.json.error.message, /manifest has version "0\.9"; this hyper2kvm reads manifest version "1\.0"/)
  })

  it('cancels cleanly on SIGINT: exit 130, running jobs cancelled, no qemu-img left, no .part', async function () {
    this.timeout(180_000)
    const big = join(dir, 'vms', 'big.raw')
    execFileSync('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', 'count=384', 'status=none'])
    const file = join(dir, 'cancel.yaml')
    writeFileSync(file, 'output_dir: out8\ncompression: zlib\nconcurrency: 1\njobs:\n  - input: vms/big.raw\n  - input: vms/alpha.raw\n')
    const out = join(dir, 'out8')
    let pid = 0
    const running = runCli(['batch', file, '--json'], {onSpawn: (p) => (pid = p)})
    const deadline = Date.now() + 60_000
    while (!existsSync(join(out, 'big.qcow2.part')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    assert.ok(existsSync(join(out, 'big.qcow2.part')), 'conversion started')
    process.kill(pid, 'SIGINT')
    // A cancel that hangs fails here with what still runs, not at the test's time limit.
    let hung: NodeJS.Timeout | undefined
    const result = await Promise.race([running, new Promise<never>((_, reject) => {
      hung = setTimeout(() => {
        const tree = execFileSync('ps', ['-eo', 'pid,ppid,stat,etime,args'], {encoding: 'utf8'}).split('\n').filter((line) => /bwrap|qemu|run\.js batch/.test(line))
        process.kill(pid, 'SIGKILL')
        reject(new Error(`batch did not exit within 90 s of SIGINT; still running:\n${tree.join('\n')}`))
      }, 90_000)
    })]).finally(() => clearTimeout(hung))
    assert.equal(result.code, 130, result.stderr)
    assert.deepEqual(result.json.jobs.map((j: {status: string}) => j.status), ['cancelled', 'cancelled'])
    assert.equal(result.json.jobs[0].error.code, 'H2K_CANCELLED')
    assert.deepEqual(leftovers(out), [])
    const children = execFileSync('ps', ['-eo', 'args'], {encoding: 'utf8'}).split('\n').filter((line) => line.includes('qemu-img') && line.includes(big))
    assert.deepEqual(children, [])
  })
})

describe('configuration through the CLI', () => {
  let dir: string
  let cleanup: () => void
  before(() => ({cleanup, dir} = makeTempDir()))
  after(() => cleanup())

  it('config show reports each value and its source; convert uses the config, flags win', async () => {
    makePatternedRaw(join(dir, 'disk.raw'))
    writeFileSync(join(dir, 'hyper2kvm.yaml'), 'output_format: raw\noutput_dir: converted\n')
    process.env.HYPER2KVM_FSTAB_MODE = 'noop'
    try {
      const shown = await runCli(['config', 'show', '--json'], {cwd: dir})
      assert.equal(shown.code, 0, shown.stderr)
      assert.equal(shown.json.file, join(dir, 'hyper2kvm.yaml'))
      assert.deepEqual(shown.json.settings.output_format, {source: join(dir, 'hyper2kvm.yaml'), value: 'raw'})
      assert.deepEqual(shown.json.settings.fstab_mode, {source: 'env HYPER2KVM_FSTAB_MODE', value: 'noop'})
      assert.deepEqual(shown.json.settings.compress, {source: 'default', value: false})
    } finally {
      delete process.env.HYPER2KVM_FSTAB_MODE
    }
    const converted = await runCli(['convert', 'disk.raw', '--json'], {cwd: dir})
    assert.equal(converted.code, 0, converted.stderr)
    assert.deepEqual(leftovers(join(dir, 'converted')).sort(), ['disk.raw', 'disk.report.json'])
    // The same VM to another format in the same directory: its report exists, so only with --overwrite.
    const flagged = await runCli(['convert', 'disk.raw', '--format', 'qcow2', '--overwrite', '--json'], {cwd: dir})
    assert.equal(flagged.code, 0, flagged.stderr)
    assert.equal(flagged.json.outputs[0].path, join(dir, 'converted', 'disk.qcow2'))
    writeFileSync(join(dir, 'bad.yaml'), 'fstab_mode: everything\n')
    const bad = await runCli(['convert', 'disk.raw', '--config', join(dir, 'bad.yaml'), '--json'], {cwd: dir})
    assert.equal(bad.code, 2)
    assert.match(bad.json.error.message, /bad\.yaml:1:13: fstab_mode: expected one of stabilize-all, bypath-only, noop/)
  })
})
