import assert from 'node:assert/strict'
import {type ChildProcess, execFileSync, spawn} from 'node:child_process'
import {appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {jobOf, jobs, killAll, type RunningDaemon, startDaemon, until} from '../helpers/daemon-process.js'
import {manifestFor, ovfText} from '../helpers/ovf-fixtures.js'
import {convertFixture, makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {makeFooterStream} from '../helpers/vmdk-fixtures.js'

/**
 * Finding 15 (issue #9 part D): a slow upload must not be converted half-written. The quiet period here is
 * 3 checks 100 ms apart (file_stable_interval: 0.1), so every pause below is many quiet periods long: main
 * claimed such a file after 300 ms of quiet and converted it truncated.
 */
describe('daemon: a file still being written or incomplete is not claimed', function () {
  this.timeout(120_000)
  let dir: string
  let cleanup: () => void
  let raw: string
  const daemons: RunningDaemon[] = []
  const writers: ChildProcess[] = []
  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-stability-'))
    raw = makePatternedRaw(join(dir, 'source.raw'))
  })
  afterEach(async () => {
    for (const w of writers.splice(0)) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL')
    await killAll(daemons)
  })
  after(() => cleanup())

  async function daemonIn(name: string, timeoutS = 60): Promise<{watch: string; out: string; d: RunningDaemon}> {
    const base = join(dir, name)
    const watch = join(base, 'queue')
    const out = join(base, 'out')
    mkdirSync(watch, {recursive: true})
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, `command: daemon\nwatch_dir: queue\noutput_dir: out\nfile_stable_checks: 3\nfile_stable_interval: 0.1\nfile_stable_timeout: ${timeoutS}\n`)
    // (startDaemon passes --stability-interval 100 too, which wins over the key: the same 100 ms.)
    const d = await startDaemon(['--config', config], out)
    daemons.push(d)
    return {d, out, watch}
  }

  it('a writer that pauses mid-way while holding the file open is not claimed; once it closes, the file converts whole, as one job', async () => {
    const {d, out, watch} = await daemonIn('writer')
    const content = readFileSync(raw)
    const target = join(watch, 'upload.raw')
    // Another process, as scp or smbd would be: writes the first half, then waits for a line on stdin.
    const writer = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs'); const [target, source] = process.argv.slice(1); const data = fs.readFileSync(source);
         const fd = fs.openSync(target, 'w'); fs.writeSync(fd, data, 0, data.length / 2, 0); process.stdout.write('half\\n');
         process.stdin.once('data', () => { fs.writeSync(fd, data, data.length / 2, data.length / 2, data.length / 2); fs.closeSync(fd); process.exit(0) })`,
        target,
        raw,
      ],
      {stdio: ['pipe', 'pipe', 'inherit']},
    )
    writers.push(writer)
    const exited = new Promise<number | null>((resolve) => writer.on('exit', resolve))
    await new Promise<void>((resolve) => writer.stdout!.once('data', () => resolve()))
    // Two seconds of silence: more than six quiet periods.
    await sleep(2000)
    assert.ok(existsSync(target), 'the half-written file was claimed')
    assert.deepEqual(jobs(out), [], 'a job was created for the half-written file')
    assert.match(d.stderr(), new RegExp(`INFO file:open-for-writing file=upload\\.raw writers=${writer.pid} `))
    assert.equal(d.stderr().match(/file:open-for-writing/g)?.length, 1, 'the wait is logged once')
    writer.stdin!.write('go\n')
    assert.equal(await exited, 0)
    const job = await until('upload done', () => jobOf(out, 'upload.raw', 'succeeded'), 60_000, d)
    assert.ok(sameContent(join(job.output_path, 'upload.qcow2'), 'qcow2', raw, 'raw'), 'the output differs from the complete source')
    await sleep(1000)
    assert.equal(jobs(out).length, 1, 'the rest of the upload became a second item')
    assert.deepEqual(readdirSync(watch).filter((n) => !n.startsWith('.')), [])
  })

  /** Formats that carry their own end, cut mid-way with nobody holding them open. */
  const cutCases: Array<{name: string; build: (at: string) => string; output: string}> = [
    {
      build: (at) => convertFixture(raw, join(at, 'src-stream.vmdk'), 'vmdk', ['subformat=streamOptimized']),
      name: 'qemu-stream.vmdk',
      output: 'qemu-stream.qcow2',
    },
    {
      build: (at) => makeFooterStream(convertFixture(raw, join(at, 'src-footer.vmdk'), 'vmdk', ['subformat=streamOptimized'])),
      name: 'vmware-stream.vmdk',
      output: 'vmware-stream.qcow2',
    },
    {build: (at) => convertFixture(raw, join(at, 'src.qcow2'), 'qcow2'), name: 'disk.qcow2', output: 'disk.qcow2'},
    {build: (at) => convertFixture(raw, join(at, 'src.vhdx'), 'vhdx'), name: 'disk.vhdx', output: 'disk.qcow2'},
    {
      build(at) {
        const vm = join(at, 'vm')
        mkdirSync(vm)
        convertFixture(raw, join(vm, 'web01-disk1.vmdk'), 'vmdk', ['subformat=streamOptimized'])
        writeFileSync(join(vm, 'web01.ovf'), ovfText('web01', [{href: 'web01-disk1.vmdk', id: 'vmdisk1'}]))
        writeFileSync(join(vm, 'web01.mf'), manifestFor(vm, ['web01.ovf', 'web01-disk1.vmdk'], 'SHA256'))
        const ova = join(at, 'web01.ova')
        execFileSync('tar', ['--format=ustar', '-cf', ova, 'web01.ovf', 'web01.mf', 'web01-disk1.vmdk'], {cwd: vm})
        return ova
      },
      name: 'web01.ova',
      output: '',
    },
  ]

  for (const c of cutCases) {
    it(`${c.name} cut mid-way waits (logged once, no job) until the rest arrives, then converts identically`, async () => {
      const {d, out, watch} = await daemonIn(`cut-${c.name}`)
      const source = c.build(join(dir, `cut-${c.name}`))
      const bytes = readFileSync(source)
      const cut = Math.floor(bytes.length / 2)
      const target = join(watch, c.name)
      writeFileSync(target, bytes.subarray(0, cut))
      await sleep(2000)
      assert.ok(existsSync(target), 'the cut file was claimed')
      assert.deepEqual(jobs(out), [], 'a job was created for the cut file')
      assert.match(d.stderr(), new RegExp(`INFO file:incomplete file=${c.name.replace('.', '\\.')} reason="[^"]+"`))
      assert.equal(d.stderr().match(/file:incomplete/g)?.length, 1, 'the wait is logged once')
      appendFileSync(target, bytes.subarray(cut))
      const job = await until(`${c.name} done`, () => jobOf(out, c.name, 'succeeded'), 60_000, d)
      const outputs = readdirSync(job.output_path).filter((n) => n.endsWith('.qcow2'))
      assert.equal(outputs.length, 1, `outputs: ${outputs.join(', ')}`)
      if (c.output) assert.equal(outputs[0], c.output)
      assert.ok(sameContent(join(job.output_path, outputs[0]!), 'qcow2', raw, 'raw'), 'the output differs from the complete source')
      assert.equal(jobs(out).length, 1)
    })
  }

  it('an OVF whose disk is still arriving waits for the disk (a companion), then converts identically', async () => {
    const {d, out, watch} = await daemonIn('ovf-companion')
    const vm = join(dir, 'ovf-companion', 'vm')
    mkdirSync(vm)
    const disk = convertFixture(raw, join(vm, 'web02-disk1.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    writeFileSync(join(vm, 'web02.ovf'), ovfText('web02', [{href: 'web02-disk1.vmdk', id: 'vmdisk1'}]))
    const bytes = readFileSync(disk)
    const cut = Math.floor(bytes.length / 2)
    writeFileSync(join(watch, 'web02-disk1.vmdk'), bytes.subarray(0, cut))
    writeFileSync(join(watch, 'web02.ovf'), readFileSync(join(vm, 'web02.ovf')))
    await sleep(2000)
    assert.ok(existsSync(join(watch, 'web02.ovf')) && existsSync(join(watch, 'web02-disk1.vmdk')), 'claimed with its disk cut')
    assert.deepEqual(jobs(out), [])
    assert.match(d.stderr(), /INFO file:incomplete file=web02-disk1\.vmdk reason="[^"]+"/)
    appendFileSync(join(watch, 'web02-disk1.vmdk'), bytes.subarray(cut))
    const job = await until('web02 done', () => jobOf(out, 'web02.ovf', 'succeeded'), 60_000, d)
    const outputs = readdirSync(job.output_path).filter((n) => n.endsWith('.qcow2'))
    assert.equal(outputs.length, 1, `outputs: ${outputs.join(', ')}`)
    assert.ok(sameContent(join(job.output_path, outputs[0]!), 'qcow2', raw, 'raw'), 'the output differs from the complete source')
    assert.equal(jobs(out).length, 1)
  })

  it('a monolithicFlat descriptor whose flat extent is cut waits until the extent is as long as declared', async () => {
    const {d, out, watch} = await daemonIn('flat')
    const at = join(dir, 'flat', 'src')
    mkdirSync(at)
    convertFixture(raw, join(at, 'flat.vmdk'), 'vmdk', ['subformat=monolithicFlat'])
    const bytes = readFileSync(join(at, 'flat-flat.vmdk'))
    const cut = Math.floor(bytes.length / 2)
    writeFileSync(join(watch, 'flat-flat.vmdk'), bytes.subarray(0, cut))
    writeFileSync(join(watch, 'flat.vmdk'), readFileSync(join(at, 'flat.vmdk')))
    await sleep(2000)
    assert.ok(existsSync(join(watch, 'flat.vmdk')), 'claimed with its extent cut')
    assert.deepEqual(jobs(out), [])
    assert.match(d.stderr(), /INFO file:incomplete file=flat\.vmdk reason="1 flat extent\(s\) are shorter/)
    appendFileSync(join(watch, 'flat-flat.vmdk'), bytes.subarray(cut))
    const job = await until('flat done', () => jobOf(out, 'flat.vmdk', 'succeeded'), 60_000, d)
    assert.ok(sameContent(join(job.output_path, 'flat.qcow2'), 'qcow2', raw, 'raw'), 'the output differs from the complete source')
    assert.equal(jobs(out).length, 1)
  })

  it('an abandoned upload (incomplete, unchanged for file_stable_timeout) is claimed then and fails with its code and an error file', async () => {
    const {d, out, watch} = await daemonIn('abandoned', 2)
    const source = convertFixture(raw, join(dir, 'abandoned-src.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    const bytes = readFileSync(source)
    writeFileSync(join(watch, 'gone.vmdk'), bytes.subarray(0, Math.floor(bytes.length / 2)))
    await sleep(1000)
    assert.deepEqual(jobs(out), [], 'claimed before file_stable_timeout')
    const job = await until('abandoned upload failed', () => jobOf(out, 'gone.vmdk', 'failed'), 30_000, d)
    assert.match(job.error ?? '', /H2K_INPUT_CORRUPT/)
    assert.match(d.stderr(), /WARN file:incomplete-claimed file=gone\.vmdk /)
    // Not a walk of the live tree: the claim's directory is removed while it settles, under a walk's feet.
    await until('gone.vmdk settled into .errors/', () => existsSync(join(watch, '.errors', 'gone.vmdk')), 15_000, d)
    const record = JSON.parse(readFileSync(join(watch, '.errors', 'gone.vmdk.error.json'), 'utf8')) as {error_code: string}
    assert.equal(record.error_code, 'H2K_INPUT_CORRUPT')
  })
})
