import assert from 'node:assert/strict'
import {type ChildProcess, execFileSync, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {ChildRecords} from '../../src/exec/child-records.js'
import {history, jobOf, jobs, killAll, type RunningDaemon, startDaemon, until} from '../helpers/daemon-process.js'
import {type HostProcess, processesOf, running} from '../helpers/processes-of.js'
import {leftovers, runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/**
 * What still runs of a killed daemon's job: processes that mention `dir`, and those seen before the kill.
 * Polled for up to `ms`: killing a namespace with a TCG qemu in it takes the kernel a moment, and an exiting
 * process has already lost the command line that would name it.
 */
async function noneLeft(dir: string | undefined, ms: number, seen: HostProcess[] = []): Promise<HostProcess[]> {
  const end = Date.now() + ms
  const left = (): HostProcess[] => [...(dir === undefined ? [] : processesOf(dir)), ...seen.filter((p) => running(p.pid))]
  while (left().length > 0 && Date.now() < end) await sleep(100)
  return left()
}

const describeLeft = (left: HostProcess[]): string => left.map((p) => `${p.pid}: ${p.command.slice(0, 160)}`).join('\n')

/** Issue #9 finding 10: `kill -9` of the daemon leaves none of its children running, and recovery reaps. */
describe('daemon: children die with the daemon', function () {
  this.timeout(300_000)
  let dir: string
  let cleanup: () => void
  const daemons: RunningDaemon[] = []
  const strays: ChildProcess[] = []
  before(() => ({cleanup, dir} = makeTempDir('h2k-children-')))
  afterEach(async () => {
    await killAll(daemons)
    for (const child of strays.splice(0)) child.kill('SIGKILL')
  })
  after(() => cleanup())

  it('kill -9 while the job is inside the libguestfs appliance: no guestfish or qemu of it survives; after restart it completes once', async () => {
    const base = join(dir, 'appliance')
    const watch = join(base, 'queue')
    const out = join(base, 'out')
    execFileSync('mkdir', ['-p', watch])
    // The cheapest input that starts the appliance: a bare ext4 file system (a signature the inspector
    // opens; no OS in it, so the job converts it unchanged).
    const disk = join(base, 'data.img')
    execFileSync('truncate', ['-s', '64M', disk])
    execFileSync('mkfs.ext4', ['-q', '-F', disk])
    execFileSync('mv', [disk, join(watch, 'data.img')])
    const first = await startDaemon(['--watch-dir', watch, '--output-dir', out])
    daemons.push(first)
    const job = await until('data.img running', () => jobOf(out, 'data.img', 'running'), 30_000, first)
    // Inside the appliance: the job's guestfish listener and its qemu run (found by the job's directory).
    const inside = await until('the appliance running', () => {
      const found = processesOf(out)
      return found.some((p) => p.command.includes('qemu-system')) && found.some((p) => p.command.startsWith('guestfish --listen')) ? found : undefined
    }, 180_000, first, 200)
    first.child.kill('SIGKILL')
    await first.exited
    const left = await noneLeft(out, 5000, inside)
    assert.deepEqual(left, [], `still running after the daemon was killed:\n${describeLeft(left)}`)
    assert.equal(jobOf(out, 'data.img')!.status, 'running')

    const second = await startDaemon(['--watch-dir', watch, '--output-dir', out])
    daemons.push(second)
    const done = await until('data.img done', () => jobOf(out, 'data.img', 'succeeded'), 240_000, second, 200)
    assert.equal(done.id, job.id)
    assert.equal(jobs(out).length, 1)
    assert.deepEqual(history(out, done.id), ['queued', 'running', 'queued', 'running', 'succeeded'])
    assert.deepEqual(readdirSync(done.output_path).sort(), ['data.qcow2', 'data.report.json'])
    const report = JSON.parse(readFileSync(join(done.output_path, 'data.report.json'), 'utf8')) as {stages: Array<{id: string; status: string}>; warnings: Array<{code: string}>}
    assert.equal(report.stages.find((s) => s.id === 'inspector:guest')?.status, 'ok', 'the second attempt went through the appliance too')
    assert.ok(!report.warnings.some((w) => w.code === 'GUEST_NOT_CONTAINED'), 'the appliance ran in its own PID namespace')
    // A finished job leaves no process and no child record behind.
    assert.deepEqual(processesOf(done.output_path), [])
    assert.deepEqual(readdirSync(join(out, '.daemon', 'children')), [])
    second.child.kill('SIGTERM')
    assert.equal(await second.exited, 0)
  })

  it('where no PID namespace can be made, what a kill -9 left of the appliance is reaped by the next start', async () => {
    const base = join(dir, 'uncontained')
    const watch = join(base, 'queue')
    const out = join(base, 'out')
    const fakeBin = join(base, 'bin')
    execFileSync('mkdir', ['-p', watch, fakeBin])
    // A bwrap that fails, as it does where user namespaces are disabled, for the appliance's namespace
    // only (it is the one that runs `sleep infinity`): the qemu-img sandbox keeps working.
    const realBwrap = (process.env.PATH ?? '').split(':').map((d) => join(d, 'bwrap')).find((p) => existsSync(p))!
    const shim = `#!/bin/sh\ncase " $* " in\n*" sleep infinity "*) echo "bwrap: No permissions to create new namespace" >&2; exit 1;;\nesac\nexec ${realBwrap} "$@"\n`
    writeFileSync(join(fakeBin, 'bwrap'), shim, {mode: 0o755})
    const disk = join(base, 'data.img')
    execFileSync('truncate', ['-s', '64M', disk])
    execFileSync('mkfs.ext4', ['-q', '-F', disk])
    execFileSync('mv', [disk, join(watch, 'data.img')])
    const path = process.env.PATH
    process.env.PATH = `${fakeBin}:${path}`
    const first = await startDaemon(['--watch-dir', watch, '--output-dir', out]).finally(() => (process.env.PATH = path))
    daemons.push(first)
    const records = join(out, '.daemon', 'children')
    const inside = await until('the appliance running, its listener recorded', () => {
      const found = processesOf(out)
      return found.some((p) => p.command.includes('qemu-system')) && existsSync(records) && readdirSync(records).length > 0 ? found : undefined
    }, 180_000, first, 200)
    const listener = inside.find((p) => p.command.startsWith('guestfish --listen'))!
    first.child.kill('SIGKILL')
    await first.exited
    await sleep(1000)
    assert.ok(running(listener.pid), 'without a namespace the daemonized listener outlives the daemon (what the reaper is for)')

    const second = await startDaemon(['--watch-dir', watch, '--output-dir', out])
    daemons.push(second)
    assert.match(second.stderr(), new RegExp(`WARN child:reaped pid=${listener.pid} what="?guestfish listener`))
    // (The new attempt starts an appliance of its own: only what ran before the kill must be gone.)
    const left = await noneLeft(undefined, 5000, inside)
    assert.deepEqual(left, [], `left running:\n${describeLeft(left)}`)
    const done = await until('data.img done', () => jobOf(out, 'data.img', 'succeeded'), 240_000, second, 200)
    assert.equal(jobs(out).length, 1)
    assert.deepEqual(history(out, done.id), ['queued', 'running', 'queued', 'running', 'succeeded'])
    second.child.kill('SIGTERM')
    assert.equal(await second.exited, 0)
  })

  it('Ctrl-C of convert while inside the appliance: exit 130, no process of it and no work directory left', async () => {
    const base = join(dir, 'cancel')
    const out = join(base, 'out')
    execFileSync('mkdir', ['-p', base])
    const disk = join(base, 'data.img')
    execFileSync('truncate', ['-s', '64M', disk])
    execFileSync('mkfs.ext4', ['-q', '-F', disk])
    let pid = 0
    const run = runCli(['convert', disk, '-o', out, '--json'], {onSpawn: (p) => (pid = p)})
    const inside = await until('the appliance running', () => {
      const found = processesOf(out)
      return found.some((p) => p.command.includes('qemu-system')) ? found : undefined
    }, 180_000, undefined, 200)
    process.kill(pid, 'SIGINT')
    const result = await run
    assert.equal(result.code, 130, result.stderr)
    assert.equal(result.json.error.code, 'H2K_CANCELLED')
    const left = await noneLeft(out, 5000, inside)
    assert.deepEqual(left, [], `left running:\n${describeLeft(left)}`)
    assert.deepEqual(leftovers(out), [])
  })

  // Passes once run-tool.ts starts every tool with a parent-death signal (helper "sandbox", same issue).
  it('kill -9 during qemu-img convert: no qemu-img survives; after restart no .part and the job completes once', async () => {
    const base = join(dir, 'convert')
    const watch = join(base, 'queue')
    const out = join(base, 'out')
    execFileSync('mkdir', ['-p', watch])
    // qemu-img -p writes progress only when it advances by 1 %, and a convert whose daemon is gone dies of
    // SIGPIPE at that write: so make 1 % slow. Text-like random data costs zlib ~10 s per 300 MB, and at the
    // start of a 32 GiB disk it is all inside the first 1 %.
    const big = join(base, 'big.raw')
    const fd = openSync(big, 'w')
    for (let i = 0; i < 20; i++) writeSync(fd, randomBytes(12 * 1024 * 1024).toString('base64'))
    closeSync(fd)
    execFileSync('truncate', ['-s', '32G', big])
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, 'command: daemon\nwatch_dir: queue\noutput_dir: out\ncompression: zlib\n')
    execFileSync('mv', [big, join(watch, 'big.raw')])
    const first = await startDaemon(['--config', config], out)
    daemons.push(first)
    const job = await until('big running', () => jobOf(out, 'big.raw', 'running'), 30_000, first, 10)
    const converting = await until('qemu-img convert writing a .part', () => {
      const found = processesOf(out)
      return existsSync(job.output_path) && readdirSync(job.output_path).some((n) => n.endsWith('.part')) && found.some((p) => p.command.startsWith('qemu-img convert')) ? found : undefined
    }, 30_000, first, 10)
    first.child.kill('SIGKILL')
    await first.exited
    const left = await noneLeft(out, 3000, converting)
    assert.deepEqual(left, [], `still running after the daemon was killed:\n${describeLeft(left)}`)

    const second = await startDaemon(['--config', config], out)
    daemons.push(second)
    const done = await until('big done', () => jobOf(out, 'big.raw', 'succeeded'), 120_000, second)
    assert.equal(done.id, job.id)
    assert.equal(jobs(out).length, 1)
    assert.deepEqual(history(out, done.id), ['queued', 'running', 'queued', 'running', 'succeeded'])
    assert.deepEqual(readdirSync(done.output_path).sort(), ['big.qcow2', 'big.report.json'])
    second.child.kill('SIGTERM')
    assert.equal(await second.exited, 0)
  })

  it("recovery reaps the children an earlier instance recorded, and leaves a pid that another process now has alone", async () => {
    const base = join(dir, 'reaper')
    const watch = join(base, 'queue')
    const out = join(base, 'out')
    execFileSync('mkdir', ['-p', watch])
    const records = new ChildRecords(join(out, '.daemon', 'children'))
    const start = (seconds: string): ChildProcess => {
      const child = spawn('sleep', [seconds], {stdio: 'ignore'})
      strays.push(child)
      return child
    }
    // As an earlier, killed instance would have left them: a leftover still running...
    const leftover = start('600')
    const leftoverExited = new Promise((resolve) => leftover.once('exit', resolve))
    await records.record(leftover.pid!, 'guestfish listener', '/nowhere/.hyper2kvm-job-x')
    // ...a recorded pid that now belongs to an unrelated process (its start time differs)...
    const unrelated = start('601')
    await records.record(unrelated.pid!, 'guestfish listener')
    const recordPath = join(records.dir, `${unrelated.pid}.json`)
    const record = JSON.parse(readFileSync(recordPath, 'utf8')) as {start_time: string}
    writeFileSync(recordPath, JSON.stringify({...record, start_time: String(Number(record.start_time) - 1)}))
    // ...and one that has ended since.
    const ended = start('602')
    await records.record(ended.pid!, 'libguestfs appliance process')
    ended.kill('SIGKILL')
    await new Promise((resolve) => ended.once('exit', resolve))

    const d = await startDaemon(['--watch-dir', watch, '--output-dir', out])
    daemons.push(d)
    await Promise.race([leftoverExited, sleep(5000).then(() => assert.fail(`the recorded leftover ${leftover.pid} is still running\n${d.stderr()}`))])
    assert.equal(leftover.signalCode, 'SIGKILL')
    assert.ok(running(unrelated.pid!), 'a process that merely reuses a recorded pid is not killed')
    assert.match(d.stderr(), new RegExp(`WARN child:reaped pid=${leftover.pid} `))
    assert.match(d.stderr(), new RegExp(`INFO child:not-ours pid=${unrelated.pid} `))
    assert.deepEqual(readdirSync(records.dir), [], 'the records are cleared')
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
  })
})
