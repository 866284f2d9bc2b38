import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {jobs, killAll, type RunningDaemon, startDaemon, today, until} from '../helpers/daemon-process.js'
import {nonSnakeKeys} from '../helpers/json-keys.js'
import {ovfText, SECOND_REGIONS} from '../helpers/ovf-fixtures.js'
import {convertFixture, makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const readJson = (path: string): Record<string, any> => JSON.parse(readFileSync(path, 'utf8'))
const settled = (out: string, n: number) => (): boolean => {
  const rows = jobs(out)
  return rows.length >= n && rows.every((j) => j.status === 'succeeded' || j.status === 'failed' || j.status === 'duplicate')
}

/** The workflow and manifest-workflow layouts: the same engine, real daemon processes, real disks. */
describe('daemon: workflow and manifest-workflow layouts', function () {
  this.timeout(120_000)
  let dir: string
  let cleanup: () => void
  let raw: string
  let raw2: string
  const daemons: RunningDaemon[] = []
  before(() => {
    ;({cleanup, dir} = makeTempDir('h2k-workflow-'))
    raw = makePatternedRaw(join(dir, 'source.raw'))
    raw2 = makePatternedRaw(join(dir, 'second.raw'), undefined, SECOND_REGIONS)
  })
  afterEach(() => killAll(daemons))
  after(() => cleanup())

  it('workflow: a disk, a jobs: batch config with its inputs, and an OVF with its disks travel to processed/<date>/ with .meta.json', async () => {
    const root = join(dir, 'w1')
    const out = join(dir, 'w1-out')
    const inbox = join(root, 'to_be_processed')
    mkdirSync(join(inbox, 'vms'), {recursive: true})
    // A disk on its own.
    convertFixture(raw, join(inbox, 'solo.vmdk'), 'vmdk')
    // A batch: one input in a subdirectory (never claimed alone), one at the top level (travels with the config).
    convertFixture(raw2, join(inbox, 'vms', 'db.qcow2'), 'qcow2')
    execFileSync('cp', ['--sparse=always', raw, join(inbox, 'web.raw')])
    writeFileSync(join(inbox, 'batch.yaml'), 'out_format: qcow2\njobs:\n  - name: web01\n    input: web.raw\n    emit: [libvirt]\n  - name: db01\n    input: vms/db.qcow2\n    output_format: raw\n')
    // An OVF with two disks beside it.
    convertFixture(raw, join(inbox, 'app-disk1.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    convertFixture(raw2, join(inbox, 'app-disk2.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    writeFileSync(join(inbox, 'app.ovf'), ovfText('app', [{href: 'app-disk1.vmdk', id: 'vmdisk1'}, {href: 'app-disk2.vmdk', id: 'vmdisk2'}]))

    const d = await startDaemon(['--workflow-mode', '--workflow-dir', root, '--output-dir', out, '--max-concurrent-jobs', '2'])
    daemons.push(d)
    await until('4 jobs settled', settled(out, 4), 90_000, d)
    await until('inbox empty', () => readdirSync(inbox).filter((n) => n !== 'vms').length === 0 && readdirSync(join(root, 'processing')).length === 0, 10_000, d)
    const rows = jobs(out)
    assert.deepEqual(rows.map((j) => j.status), ['succeeded', 'succeeded', 'succeeded', 'succeeded'], d.stderr())
    assert.equal(rows.length, 4, 'solo, web01, db01, app: the OVF disks and the batch inputs are not jobs of their own')

    const day = join(out, today())
    assert.ok(sameContent(join(day, 'solo', 'solo.qcow2'), 'qcow2', raw, 'raw'))
    assert.ok(sameContent(join(day, 'web01', 'web01.qcow2'), 'qcow2', raw, 'raw'))
    assert.ok(sameContent(join(day, 'db01', 'db01.raw'), 'raw', raw2, 'raw'), 'the job key output_format: raw is honoured')
    const appOutputs = readdirSync(join(day, 'app')).filter((n) => n.endsWith('.qcow2')).sort()
    assert.equal(appOutputs.length, 2, `two disks from the OVF: ${appOutputs.join(', ')}`)

    const processed = join(root, 'processed', today())
    for (const f of ['solo.vmdk', 'batch.yaml', 'web.raw', 'vms/db.qcow2', 'app.ovf', 'app-disk1.vmdk', 'app-disk2.vmdk']) assert.ok(existsSync(join(processed, f)), `${f} archived in processed/<date>/`)
    const meta = readJson(join(processed, 'batch.yaml.meta.json'))
    assert.equal(meta.kind, 'job-config')
    assert.equal(meta.status, 'success')
    assert.deepEqual(meta.files.sort(), ['batch.yaml', 'vms/db.qcow2', 'web.raw'])
    assert.deepEqual(meta.jobs.map((j: {name: string}) => j.name).sort(), ['db01', 'web01'])
    assert.ok(meta.jobs.every((j: {report: string}) => existsSync(j.report)), 'each job has its report')
    // emit: [libvirt] in a dropped job: the domain lies beside its outputs and the meta lists it, for that job only.
    const byName = Object.fromEntries(meta.jobs.map((j: {name: string}) => [j.name, j])) as Record<string, {libvirt_xml?: string}>
    assert.equal(byName.web01?.libvirt_xml, join(day, 'web01', 'web01.xml'))
    assert.match(readFileSync(join(day, 'web01', 'web01.xml'), 'utf8'), new RegExp(`<source file="${join(day, 'web01', 'web01.qcow2')}"/>`))
    assert.equal(byName.db01?.libvirt_xml, undefined)
    assert.deepEqual(readJson(join(processed, 'app.ovf.meta.json')).files.sort(), ['app-disk1.vmdk', 'app-disk2.vmdk', 'app.ovf'])
    assert.equal(readJson(join(processed, 'solo.vmdk.meta.json')).jobs[0].status, 'succeeded')
    assert.match(d.stderr(), /file:claimed .*file=app\.ovf files=3/)

    assert.equal((await runCli(['ctl', 'stop', '--output-dir', out])).code, 0)
    assert.equal(await d.exited, 0)
  })

  it('workflow: a batch with one bad job goes to failed/<date>/ with .error.json listing the jobs; the good output stays', async () => {
    const root = join(dir, 'w2')
    const out = join(dir, 'w2-out')
    const inbox = join(root, 'to_be_processed')
    mkdirSync(join(inbox, 'in'), {recursive: true})
    execFileSync('cp', ['--sparse=always', raw, join(inbox, 'in', 'good.raw')])
    writeFileSync(join(inbox, 'in', 'bad.vmdk'), Buffer.alloc(1024 * 1024, 0x5a))
    writeFileSync(join(inbox, 'mixed.json'), JSON.stringify({jobs: [{input: 'in/good.raw', name: 'good'}, {input: 'in/bad.vmdk', name: 'bad'}]}))
    // A job config that is not valid is failed at once, permanently, with its error file.
    writeFileSync(join(inbox, 'broken.yaml'), 'jobs:\n  - name: x\n    inptu: in/good.raw\n')
    const d = await startDaemon(['--workflow-mode', '--workflow-dir', root, '--output-dir', out], out)
    daemons.push(d)
    await until('3 jobs settled', settled(out, 3), 60_000, d)
    await until('inbox empty', () => !existsSync(join(inbox, 'mixed.json')) && !existsSync(join(inbox, 'broken.yaml')) && readdirSync(join(root, 'processing')).length === 0, 10_000, d)

    const failed = join(root, 'failed', today())
    const error = readJson(join(failed, 'mixed.json.error.json'))
    assert.equal(error.filename, 'mixed.json')
    assert.equal(error.layout, 'workflow')
    assert.deepEqual(error.files.sort(), ['in/bad.vmdk', 'in/good.raw', 'mixed.json'])
    assert.equal(error.error_code, 'H2K_INPUT_UNRECOGNIZED', JSON.stringify(error))
    assert.ok(error.suggestion, 'a suggestion from the catalog')
    assert.ok(error.system_info.node_version && typeof error.system_info.free_disk_mb === 'number')
    assert.deepEqual(error.jobs.map((j: {name: string; status: string}) => `${j.name}:${j.status}`).sort(), ['bad:failed', 'good:succeeded'])
    for (const f of ['mixed.json', 'in/good.raw', 'in/bad.vmdk']) assert.ok(existsSync(join(failed, f)), `${f} moved to failed/<date>/`)
    assert.ok(sameContent(join(out, today(), 'good', 'good.qcow2'), 'qcow2', raw, 'raw'), 'the job that succeeded keeps its output')
    assert.ok(!existsSync(join(out, today(), 'bad')), 'nothing of the failed job is left')

    const broken = readJson(join(failed, 'broken.yaml.error.json'))
    assert.equal(broken.error_code, 'H2K_JOB_INVALID')
    assert.equal(broken.permanent, true)
    assert.match(broken.error, /inptu/)
    assert.equal(broken.retry_info.reason_not_retried, 'permanent error')
    assert.ok(existsSync(join(failed, 'broken.yaml')))
  })

  it('manifest workflow: a manifest gets <manifest>.report.json; its disk travels with it; a disk alone is left alone', async () => {
    const root = join(dir, 'm1')
    const out = join(dir, 'm1-out')
    const inbox = join(root, 'to_be_processed')
    mkdirSync(join(inbox, 'disks'), {recursive: true})
    convertFixture(raw, join(inbox, 'disks', 'web01.vmdk'), 'vmdk')
    const manifest = {pipeline: {convert: {compress: true, output_format: 'qcow2'}, load: {source_path: 'disks/web01.vmdk', source_type: 'vmdk'}, validate: {compare: true}}, version: '1.0'}
    writeFileSync(join(inbox, 'web01.json'), JSON.stringify(manifest, null, 2))
    writeFileSync(join(inbox, 'old.json'), JSON.stringify({...manifest, version: '0.9'}))
    execFileSync('cp', ['--sparse=always', raw, join(inbox, 'stray.raw')])
    const d = await startDaemon(['--manifest-workflow-mode', '--manifest-workflow-dir', root, '--output-dir', out], out)
    daemons.push(d)
    await until('2 jobs settled', settled(out, 2), 60_000, d)
    const processed = join(root, 'processed', today())
    // The report is written before the files move: the disk is waited for too.
    await until('report', () => existsSync(join(processed, 'web01.report.json')) && existsSync(join(processed, 'disks', 'web01.vmdk')) && existsSync(join(root, 'failed', today(), 'old.report.json')), 10_000, d)

    const report = readJson(join(processed, 'web01.report.json'))
    assert.equal(report.version, '1.0')
    assert.equal(report.status, 'succeeded')
    assert.equal(report.manifest, join(processed, 'web01.json'))
    assert.equal(report.result.input.loader, 'loader:vmdk')
    const output = report.result.outputs[0].path as string
    assert.ok(output.startsWith(join(out, today(), 'web01')), output)
    assert.ok(sameContent(output, 'qcow2', raw, 'raw'))
    assert.ok(existsSync(join(processed, 'disks', 'web01.vmdk')), 'the disk travelled with its manifest')

    const old = readJson(join(root, 'failed', today(), 'old.report.json'))
    assert.equal(old.status, 'failed')
    assert.equal(old.error.code, 'H2K_JOB_INVALID')
    assert.ok(existsSync(join(root, 'failed', today(), 'old.json.error.json')))

    assert.ok(existsSync(join(inbox, 'stray.raw')), 'a disk no manifest names is not converted in the manifest workflow')
    assert.equal(jobs(out).length, 2)

    // One JSON key convention: the reports, the error file and `ctl job` (the stored result and definition) are snake_case.
    assert.equal(typeof report.result.job_id, 'string')
    assert.equal(report.job_id, report.result.job_id)
    assert.equal(typeof report.duration_ms, 'number')
    const errorFile = readJson(join(root, 'failed', today(), 'old.json.error.json'))
    for (const [what, json] of [['web01.report.json', report], ['old.report.json', old], ['old.json.error.json', errorFile], ['web01.json.meta.json', readJson(join(processed, 'web01.json.meta.json'))]] as const) {
      assert.deepEqual(nonSnakeKeys(json), [], what)
    }
    const shown = await runCli(['ctl', 'job', report.job_id, '--output-dir', out, '--json'])
    assert.equal(shown.code, 0, shown.stderr)
    assert.deepEqual(nonSnakeKeys(shown.json), [], 'ctl job --json')
    assert.equal(shown.json.result.outputs[0].path, output)
    assert.equal(shown.json.definition.settings.output_dir, join(out, today(), 'web01'))
  })

  it('an OVF dropped before its disks waits for them (file:waiting), then the three are claimed together', async () => {
    const root = join(dir, 'w3')
    const out = join(dir, 'w3-out')
    const inbox = join(root, 'to_be_processed')
    mkdirSync(inbox, {recursive: true})
    const staging = join(dir, 'w3-staging')
    mkdirSync(staging)
    convertFixture(raw, join(staging, 'late-1.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    convertFixture(raw2, join(staging, 'late-2.vmdk'), 'vmdk', ['subformat=streamOptimized'])
    writeFileSync(join(inbox, 'late.ovf'), ovfText('late', [{href: 'late-1.vmdk', id: 'vmdisk1'}, {href: 'late-2.vmdk', id: 'vmdisk2'}]))
    const d = await startDaemon(['--workflow-mode', '--workflow-dir', root, '--output-dir', out], out)
    daemons.push(d)
    await until('file:waiting', () => /file:waiting .*file=late\.ovf .*missing=late-1\.vmdk,late-2\.vmdk/.test(d.stderr()), 10_000, d)
    assert.equal(jobs(out).length, 0, 'the OVF is not claimed while its disks are missing')
    execFileSync('mv', [join(staging, 'late-1.vmdk'), join(staging, 'late-2.vmdk'), inbox])
    await until('settled', settled(out, 1), 60_000, d)
    assert.equal(jobs(out)[0]!.status, 'succeeded', d.stderr())
    const outputs = readdirSync(join(out, today(), 'late')).filter((n) => n.endsWith('.qcow2'))
    assert.equal(outputs.length, 2)
  })

  it('recovery: a claim recorded but never planned is adopted; one interrupted before its main file moved is put back', async () => {
    const root = join(dir, 'w4')
    const out = join(dir, 'w4-out')
    const inbox = join(root, 'to_be_processed')
    mkdirSync(inbox, {recursive: true})
    // Crash after the claim's renames, before its jobs reached the store.
    const adopted = join(root, 'processing', 'aaaa1111')
    mkdirSync(join(adopted, 'in'), {recursive: true})
    execFileSync('cp', ['--sparse=always', raw, join(adopted, 'in', 'x.raw')])
    writeFileSync(join(adopted, 'job.yaml'), 'name: adopted\ninput: in/x.raw\n')
    writeFileSync(join(adopted, '.claim.json'), JSON.stringify({claimed_at: new Date().toISOString(), files: ['job.yaml', 'in/x.raw'], id: 'aaaa1111', kind: 'job-config', main: 'job.yaml'}))
    // Crash in the middle of a claim: the companion moved, the main file (the OVF) did not.
    const undone = join(root, 'processing', 'bbbb2222')
    mkdirSync(undone, {recursive: true})
    execFileSync('cp', ['--sparse=always', raw, join(undone, 'half.raw')])
    writeFileSync(join(undone, '.claim.json'), JSON.stringify({claimed_at: new Date().toISOString(), files: ['half.ovf', 'half.raw'], id: 'bbbb2222', kind: 'disk', main: 'half.ovf'}))
    const d = await startDaemon(['--workflow-mode', '--workflow-dir', root, '--output-dir', out], out)
    daemons.push(d)
    await until('adopted job done', () => jobs(out).find((j) => j.source_path === 'x.raw' && j.status === 'succeeded'), 60_000, d)
    assert.match(d.stderr(), /job:adopted .*intake=aaaa1111/)
    assert.match(d.stderr(), /file:unclaimed .*file=half\.ovf/)
    assert.ok(sameContent(join(out, today(), 'adopted', 'adopted.qcow2'), 'qcow2', raw, 'raw'))
    // Settling writes the sidecars first, then moves the files: wait for both.
    await until('settled', () => existsSync(join(root, 'processed', today(), 'job.yaml.meta.json')) && existsSync(join(root, 'processed', today(), 'in', 'x.raw')), 10_000, d)
    assert.ok(!existsSync(undone), 'the interrupted claim is gone')
  })

  it('a dropped item reads only its own files and allowed_input_dirs: an outside path or a symlink out is refused, permanently', async () => {
    const root = join(dir, 'w5')
    const out = join(dir, 'w5-out')
    const inbox = join(root, 'to_be_processed')
    const elsewhere = join(dir, 'w5-elsewhere')
    const shared = join(dir, 'w5-shared')
    mkdirSync(inbox, {recursive: true})
    mkdirSync(elsewhere)
    mkdirSync(shared)
    execFileSync('cp', ['--sparse=always', raw, join(elsewhere, 'secret.raw')])
    execFileSync('cp', ['--sparse=always', raw, join(shared, 'ok.raw')])
    const config = join(dir, 'w5.yaml')
    writeFileSync(config, `command: daemon\nworkflow_mode: true\nworkflow_dir: ${root}\noutput_dir: ${out}\nallowed_input_dirs: [w5-shared]\nretry_policy:\n  enabled: false\n`)
    writeFileSync(join(inbox, 'outside.yaml'), `name: outside\ninput: ${join(elsewhere, 'secret.raw')}\n`)
    writeFileSync(join(inbox, 'escape.yaml'), 'name: escape\ninput: ../../w5-elsewhere/secret.raw\n')
    symlinkSync(join(elsewhere, 'secret.raw'), join(inbox, 'link.raw'))
    writeFileSync(join(inbox, 'allowed.yaml'), `name: allowed\ninput: ${join(shared, 'ok.raw')}\n`)
    const d = await startDaemon(['--config', config], out)
    daemons.push(d)
    await until('4 settled', settled(out, 4), 60_000, d)
    const failed = join(root, 'failed', today())
    await until('error files', () => ['outside.yaml', 'escape.yaml', 'link.raw'].every((f) => existsSync(join(failed, `${f}.error.json`))), 10_000, d)
    for (const f of ['outside.yaml', 'escape.yaml', 'link.raw']) {
      const error = readJson(join(failed, `${f}.error.json`))
      assert.equal(error.error_code, 'H2K_UNSAFE_PATH', `${f}: ${JSON.stringify(error)}`)
      assert.equal(error.permanent, true)
      assert.match(error.suggestion, /allowed_input_dirs/)
    }
    assert.ok(!existsSync(join(out, today(), 'outside')) && !existsSync(join(out, today(), 'link')), 'nothing was converted from outside')
    assert.ok(sameContent(join(out, today(), 'allowed', 'allowed.qcow2'), 'qcow2', raw, 'raw'), 'an input under allowed_input_dirs is converted')
    assert.ok(existsSync(join(shared, 'ok.raw')) && existsSync(join(elsewhere, 'secret.raw')), 'inputs outside the drop directory stay where they are')
  })
})
