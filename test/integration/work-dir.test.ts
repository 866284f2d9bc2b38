import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdirSync, readdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {gzipSync} from 'node:zlib'

import {jobs, killAll, type RunningDaemon, startDaemon, until} from '../helpers/daemon-process.js'
import {ovfText} from '../helpers/ovf-fixtures.js'
import {runCli} from '../helpers/run-cli.js'
import {craftTar} from '../helpers/tar-craft.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/**
 * #9 finding 14: `work_dir` was accepted and never used, and the H2K_NO_SPACE suggestion named a
 * --work-dir flag that did not exist. A gzip'ed OVA is decompressed into the job's work directory: with
 * the work directory on a 32 MiB tmpfs (less than the 1 GiB always left free) the decompression is
 * refused there, which shows where the work directory was — for convert, batch and the daemon.
 */
describe('work_dir / --work-dir: where job work directories go', function () {
  this.timeout(120_000)
  let dir: string
  let cleanup: () => void
  let small: string
  let ova: string
  const daemons: RunningDaemon[] = []
  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-workdir-'))
    small = join(dir, 'small')
    mkdirSync(small)
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'h2k-workdir', small])
    ova = join(dir, 'app.ova')
    writeFileSync(ova, gzipSync(craftTar([{data: Buffer.from(ovfText('app', [{href: 'app-disk1.vmdk', id: 'vmdisk1'}])), name: 'app.ovf'}, {data: Buffer.alloc(1024 * 1024), name: 'app-disk1.vmdk'}])))
  })
  afterEach(() => killAll(daemons))
  after(() => {
    if (small) execFileSync('umount', [small])
    cleanup()
  })

  const target = (error: {code: string; details?: {target?: string}}): string => {
    assert.equal(error.code, 'H2K_NO_SPACE', JSON.stringify(error))
    return String(error.details?.target)
  }

  it('convert and batch create it under --work-dir (and remove it), inside the output directory without', async () => {
    const out = join(dir, 'out')
    const work = join(small, 'convert')
    const convert = await runCli(['convert', ova, '--output-dir', out, '--work-dir', work, '--no-fix', '--json'])
    assert.ok(target(convert.json.error).startsWith(`${work}/.hyper2kvm-`), convert.stdout)
    assert.deepEqual(readdirSync(work), [], 'the work directory is removed')

    const job = join(dir, 'job.yaml')
    writeFileSync(job, `input: ${ova}\noutput_dir: ${join(dir, 'batch-out')}\nfix: false\n`)
    const batchWork = join(small, 'batch')
    const batch = await runCli(['batch', job, '--work-dir', batchWork, '--json'])
    assert.ok(target(batch.json.jobs[0].error).startsWith(`${batchWork}/.hyper2kvm-`), batch.stdout)

    // Without: inside the output directory (as before), where the budget is the real disk's.
    const plain = await runCli(['convert', ova, '--output-dir', join(small, 'plain-out'), '--no-fix', '--json'])
    assert.ok(target(plain.json.error).startsWith(`${join(small, 'plain-out')}/.hyper2kvm-`), plain.stdout)
  })

  it("the daemon's work_dir key is where its jobs work", async () => {
    const watch = join(dir, 'watch')
    const out = join(dir, 'daemon-out')
    const work = join(small, 'daemon')
    mkdirSync(watch)
    const config = join(dir, 'daemon.yaml')
    writeFileSync(config, `command: daemon\nwatch_dir: ${watch}\noutput_dir: ${out}\nwork_dir: ${work}\nfix: false\nretry_policy:\n  enabled: false\n`)
    const d = await startDaemon(['--config', config], out)
    daemons.push(d)
    execFileSync('cp', [ova, join(watch, 'app.ova')])
    const failed = await until('the OVA job failed', () => jobs(out).find((j) => j.status === 'failed'), 60_000, d)
    assert.ok(target(JSON.parse(failed.error!)).startsWith(`${work}/.hyper2kvm-`), failed.error!)
    assert.deepEqual(readdirSync(work), [], 'the work directory is removed')
    assert.equal((await runCli(['ctl', 'stop', '--output-dir', out])).code, 0)
    assert.equal(await d.exited, 0)
  })
})
