import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {parse, stringify} from 'yaml'

import {jobs, killAll, type RunningDaemon, startDaemon, today, until} from '../helpers/daemon-process.js'
import {request} from '../helpers/http-scrape.js'
import {ovfText} from '../helpers/ovf-fixtures.js'
import {usePgCluster} from '../helpers/pg-cluster.js'
import {convertFixture, makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/**
 * The files in examples/ are what users copy: they must run, not only validate. The VMs they name are
 * made here from the patterned test disk (blank disks: no guest to fix, so no appliance is started).
 */
describe('examples/ run as shipped', function () {
  this.timeout(300_000)
  let dir: string
  let cleanup: () => void
  let expected: string

  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-examples-'))
    cpSync(new URL('../../examples', import.meta.url).pathname, join(dir, 'examples'), {recursive: true})
    cpSync(new URL('../../schemas', import.meta.url).pathname, join(dir, 'schemas'), {recursive: true})
    const vms = join(dir, 'examples', 'vms')
    expected = makePatternedRaw(join(dir, 'expected.raw'))
    mkdirSync(join(vms, 'web01'), {recursive: true})
    convertFixture(expected, join(vms, 'web01', 'web01.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    mkdirSync(join(vms, 'db01'))
    convertFixture(expected, join(vms, 'db01', 'db01-disk1.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    writeFileSync(join(vms, 'db01', 'db01.ovf'), ovfText('db01', [{href: 'db01-disk1.vmdk', id: 'vmdisk1'}]))
    execFileSync('tar', ['-cf', 'db01.ova', 'db01.ovf', 'db01-disk1.vmdk'], {cwd: join(vms, 'db01')})
    mkdirSync(join(vms, 'legacy'))
    convertFixture(expected, join(vms, 'legacy', 'legacy.vhdx'), 'vhdx')
  })
  after(() => cleanup())
  beforeEach(() => rmSync(join(dir, 'examples', 'out'), {force: true, recursive: true}))

  it('job-config-simple.yaml through convert --job', async () => {
    const result = await runCli(['convert', '--job', join(dir, 'examples', 'job-config-simple.yaml'), '--json'])
    assert.equal(result.code, 0, result.stdout + result.stderr)
    assert.equal(result.json.outputs[0].path, join(dir, 'examples', 'out', 'web01.qcow2'))
    assert.ok(sameContent(expected, 'raw', result.json.outputs[0].path, 'qcow2'))
  })

  it('job-config-batch.yaml through batch (the boot test of its legacy job needs a real guest: switched off here)', async () => {
    const batch = join(dir, 'examples', 'job-config-batch.yaml')
    writeFileSync(batch, readFileSync(batch, 'utf8').replace('verify_boot: true', 'verify_boot: false'))
    const result = await runCli(['batch', batch, '--json'])
    assert.equal(result.code, 0, result.stdout + result.stderr)
    assert.deepEqual(result.json.jobs.map((j: {name: string; status: string}) => [j.name, j.status]), [['web01', 'succeeded'], ['db01', 'succeeded'], ['legacy', 'succeeded']])
    const outputs = result.json.jobs.map((j: {outputs: string[]}) => j.outputs[0])
    assert.deepEqual(outputs, ['web01.qcow2', 'db01.raw', 'legacy.qcow2'].map((f) => join(dir, 'examples', 'out', f)))
    for (const output of outputs) assert.ok(sameContent(expected, 'raw', output, output.endsWith('.raw') ? 'raw' : 'qcow2'), output)
  })

  it('manifest.json through batch, with its report next to the manifest', async () => {
    const manifest = join(dir, 'examples', 'manifest.json')
    const result = await runCli(['batch', manifest, '--json'])
    assert.equal(result.code, 0, result.stdout + result.stderr)
    const report = JSON.parse(readFileSync(join(dir, 'examples', 'manifest.report.json'), 'utf8'))
    assert.ok(JSON.stringify(report).includes('web01'))
  })

  describe('daemon-cluster.yaml, with its directories moved and its store pointed at a throwaway PostgreSQL', () => {
    const pg = usePgCluster()
    const daemons: RunningDaemon[] = []
    afterEach(() => killAll(daemons))

    it('runs as shipped otherwise: a dropped disk is converted, ctl status shows this node in the cluster view', async () => {
      const values = parse(readFileSync(join(dir, 'examples', 'daemon-cluster.yaml'), 'utf8')) as Record<string, any>
      const base = join(dir, 'cluster')
      const [root, out] = [join(base, 'queue'), join(base, 'out')]
      mkdirSync(root, {recursive: true})
      Object.assign(values, {output_dir: out, state_dir: join(base, 'node', '.daemon'), watch_dir: root, work_dir: join(base, 'work')})
      writeFileSync(join(base, 'store-password'), `${pg().password}\n`, {mode: 0o600})
      values.store = {...values.store, password_file: join(base, 'store-password'), url: `postgres://${pg().role}@127.0.0.1:${pg().port}/${await pg().createDatabase()}`}
      const config = join(base, 'daemon-cluster.yaml')
      writeFileSync(config, stringify(values))
      // startDaemon waits for <dir>/.daemon/control.sock: the state_dir above is such a directory.
      const d = await startDaemon(['--config', config], join(base, 'node'), undefined, {env: {HYPER2KVM_STORE_PASSWORD: ''}})
      daemons.push(d)
      cpSync(join(dir, 'examples', 'vms', 'web01', 'web01.vmdk'), join(root, 'web01.vmdk'))
      const output = join(out, today(), 'web01', 'web01.qcow2')
      await until('converted', () => existsSync(output) && existsSync(join(root, '.processed', today(), 'web01.vmdk')), 60_000, d)
      assert.ok(sameContent(output, 'qcow2', expected, 'raw'))
      const status = await runCli(['ctl', 'status', '--config', config, '--json'], {env: {HYPER2KVM_STORE_PASSWORD: ''}})
      assert.equal(status.code, 0, status.stderr)
      assert.equal(status.json.cluster.nodes.length, 1)
      assert.equal(status.json.cluster.nodes[0].alive, true)
      assert.equal(status.json.cluster.totals.total_processed, 1)
    })
  })

  describe('daemon configurations, with their directories moved into a temporary tree', () => {
    const daemons: RunningDaemon[] = []
    afterEach(() => killAll(daemons))

    /** The example with only its directories (and the log file) pointed elsewhere; every other key as shipped. */
    function relocated(name: string): {config: string; root: string; out: string} {
      const values = parse(readFileSync(join(dir, 'examples', name), 'utf8')) as Record<string, unknown>
      const base = join(dir, 'daemon', name)
      const root = join(base, 'root')
      const out = join(base, 'out')
      for (const key of ['watch_dir', 'workflow_dir', 'manifest_workflow_dir']) if (key in values) values[key] = root
      values.output_dir = out
      if ('work_dir' in values) values.work_dir = join(base, 'work')
      if ('log_file' in values) values.log_file = join(base, 'daemon.log')
      // The shipped metrics port may be taken on a test machine: any free one (logged as http:listening).
      if (values.metrics) values.metrics = {...(values.metrics as object), port: 0}
      if (values.api) values.api = {...(values.api as object), port: 0}
      mkdirSync(base, {recursive: true})
      writeFileSync(join(base, name), stringify(values))
      return {config: join(base, name), out, root}
    }

    for (const [name, layout] of [
      ['daemon.yaml', 'watch'],
      ['workflow-daemon.yaml', 'workflow'],
      ['manifest-workflow-daemon.yaml', 'manifest-workflow'],
    ] as const) {
      it(`${name} runs: a dropped ${layout === 'manifest-workflow' ? 'manifest' : 'disk'} is converted with the shipped defaults`, async () => {
        const {config, out, root} = relocated(name)
        const inbox = layout === 'watch' ? root : join(root, 'to_be_processed')
        mkdirSync(join(inbox, 'disks'), {recursive: true})
        const d = await startDaemon(['--config', config], out)
        daemons.push(d)
        assert.match(d.log(), /daemon:start /)
        if (layout === 'manifest-workflow') {
          cpSync(join(dir, 'examples', 'vms', 'web01', 'web01.vmdk'), join(inbox, 'disks', 'web01.vmdk'))
          writeFileSync(join(inbox, 'web01.json'), JSON.stringify({pipeline: {load: {source_path: 'disks/web01.vmdk'}}, version: '1.0'}))
        } else {
          cpSync(join(dir, 'examples', 'vms', 'web01', 'web01.vmdk'), join(inbox, 'web01.vmdk'))
        }
        const job = await until('converted', () => jobs(out).find((j) => j.status === 'succeeded' || j.status === 'failed'), 60_000, d)
        assert.equal(job.status, 'succeeded', d.log())
        const output = join(out, today(), 'web01', 'web01.qcow2')
        assert.ok(sameContent(output, 'qcow2', expected, 'raw'))
        if (layout !== 'manifest-workflow') {
          // The shipped defaults say compress: true.
          const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', output], {encoding: 'utf8'})) as {'actual-size': number}
          assert.ok(info['actual-size'] < 2 * 1024 * 1024, `compressed output (${info['actual-size']} bytes)`)
        }
        if (name === 'daemon.yaml') {
          // The shipped metrics block serves: jobs counted on loopback.
          const port = Number((await until('http:listening', () => /http:listening address=127\.0\.0\.1 auth=none port=(\d+)/.exec(d.log()) ?? undefined, 5000, d))[1])
          let scrape = await request(port, '/metrics')
          for (let i = 0; i < 50 && !/^hyper2kvm_jobs_total\{status="succeeded"\} 1$/m.test(scrape.body); i++) scrape = await new Promise((resolve) => setTimeout(resolve, 100)).then(() => request(port, '/metrics'))
          assert.match(scrape.body, /^hyper2kvm_jobs_total\{status="succeeded"\} 1$/m)
        }
        if (name === 'daemon.yaml') await until('log file', () => existsSync(join(dir, 'daemon', name, 'daemon.log')) && readFileSync(join(dir, 'daemon', name, 'daemon.log'), 'utf8').includes('job:succeeded'), 5000, d)
      })
    }
  })
})
