import assert from 'node:assert/strict'
import {mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {applySchedulePolicy, expandTemplate} from '../../src/schedule/job-template.js'
import {parseScheduleKeys} from '../../src/schedule/schedule-keys.js'
import type {Schedule} from '../../src/schedule/schedule.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('schedule templates', () => {
  let temp: ReturnType<typeof makeTempDir>
  let disks: string
  beforeEach(() => {
    temp = makeTempDir('h2k-tpl-')
    disks = join(temp.dir, 'disks')
    mkdirSync(disks)
  })
  afterEach(() => temp.cleanup())

  it('sweep_dir: one job per disk file (pattern, no dotfiles, no other files); a symlink is refused and only named', async () => {
    for (const name of ['a.vmdk', 'b.vmdk', 'c.raw', '.hidden.vmdk', 'notes.txt']) writeFileSync(join(disks, name), 'x')
    symlinkSync('/etc/shadow', join(disks, 'evil.vmdk'))
    const all = await expandTemplate({sweep_dir: disks}, {allowedInputDirs: [disks], source: 'api'})
    assert.deepEqual(all.document, {jobs: ['a.vmdk', 'b.vmdk', 'c.raw'].map((n) => ({input: join(disks, n)}))})
    assert.deepEqual(all.notes, ['evil.vmdk: a symbolic link, refused'])
    const some = await expandTemplate({pattern: '*.raw', sweep_dir: disks}, {allowedInputDirs: [disks], source: 'config'})
    assert.deepEqual(some.document, {input: join(disks, 'c.raw')})
  })

  it('sweep_dir: a VMDK descriptor\'s extents are part of its job, not jobs of their own', async () => {
    writeFileSync(join(disks, 'vm.vmdk'), '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n# Extent description\nRW 8 FLAT "vm-flat.vmdk" 0\n\n# The Disk Data Base\nddb.adapterType = "lsilogic"\n')
    writeFileSync(join(disks, 'vm-flat.vmdk'), Buffer.alloc(4096))
    const {document} = await expandTemplate({sweep_dir: disks}, {allowedInputDirs: [disks], source: 'config'})
    assert.deepEqual(document, {input: join(disks, 'vm.vmdk')})
  })

  it('sweep_dir outside allowed_input_dirs, or empty, is refused', async () => {
    await assert.rejects(expandTemplate({sweep_dir: disks}, {allowedInputDirs: [], source: 'config'}), (e: Error & {code?: string}) => e.code === 'H2K_UNSAFE_PATH')
    await assert.rejects(expandTemplate({sweep_dir: disks}, {allowedInputDirs: [disks], source: 'config'}), /holds no disk file/)
  })

  it('job_file: read at run time, inputs relative to it; over the API only under allowed_input_dirs', async () => {
    writeFileSync(join(disks, 'wave.yaml'), 'output_format: raw\njobs:\n  - {name: db, input: db.raw}\n  - {name: app, input: app.raw, depends_on: [db]}\n')
    const {document} = await expandTemplate({job_file: join(disks, 'wave.yaml')}, {allowedInputDirs: [disks], source: 'api'})
    assert.deepEqual(document, {jobs: [{input: join(disks, 'db.raw'), name: 'db'}, {depends_on: ['db'], input: join(disks, 'app.raw'), name: 'app'}], output_format: 'raw'})
    writeFileSync(join(temp.dir, 'outside.yaml'), 'input: x.raw\n')
    await assert.rejects(expandTemplate({job_file: join(temp.dir, 'outside.yaml')}, {allowedInputDirs: [disks], source: 'api'}), (e: Error & {code?: string}) => e.code === 'H2K_UNSAFE_PATH')
    // The configuration's own job files are the operator's: read where they are.
    assert.deepEqual((await expandTemplate({job_file: join(temp.dir, 'outside.yaml')}, {allowedInputDirs: [], source: 'config'})).document, {input: join(temp.dir, 'x.raw')})
  })

  it('manifest: its pipeline as job keys (input beside it; its output_dir dropped: outputs are the daemon\'s)', async () => {
    writeFileSync(join(disks, 'vm.json'), JSON.stringify({pipeline: {convert: {output_dir: '/elsewhere', output_format: 'qcow2', compress: true}, fix: {fstab: {mode: 'noop'}}, load: {source_path: 'vm.vmdk'}}, version: '1.0'}))
    const {document} = await expandTemplate({manifest: join(disks, 'vm.json')}, {allowedInputDirs: [disks], source: 'config'})
    assert.deepEqual(document, {compress: true, fstab_mode: 'noop', input: join(disks, 'vm.vmdk'), output_format: 'qcow2'})
  })

  it('the seed\'s {vm_path, output_path, options} is {input: vm_path}, with warnings for what is ignored', () => {
    const warnings: string[] = []
    const spec = parseScheduleKeys({enabled: true, id: 'daily-backup', job_template: {options: {parallel_downloads: 8}, output_path: '/backups/daily', vm_path: 'vm/production.ova'}, name: 'Daily VM Backup', schedule: '0 2 * * *'}, {baseDir: '/etc/h2k', source: 'config', warn: (m) => warnings.push(m), where: 'daemon.yaml: schedules[0]'})
    assert.deepEqual(spec.template, {input: '/etc/h2k/vm/production.ova'})
    assert.equal(warnings.length, 2)
    assert.match(warnings[0]!, /output_path is ignored/)
  })

  it('parseScheduleKeys refuses what cannot run, naming the key', () => {
    const parse = (keys: Record<string, unknown>) => () => parseScheduleKeys(keys, {source: 'api', where: 'request body'})
    assert.throws(parse({cron: '0 2 * *', job_template: {input: '/x'}}), /has 4 fields/)
    assert.throws(parse({cron: '0 25 * * *', job_template: {input: '/x'}}), /not a valid cron expression/)
    assert.throws(parse({cron: '0 2 * * *', job_template: {input: '/x'}, timezone: 'Mars/Olympus'}), /unknown time zone "Mars\/Olympus"/)
    assert.throws(parse({cron: '0 2 * * *'}), /job_template is missing/)
    assert.throws(parse({cron: '0 2 * * *', job_template: {job_file: 'relative.yaml'}}), /must be an absolute path/)
    assert.throws(parse({cron: '0 2 * * *', job_template: {input: '/x'}, overlap: 'maybe'}), /overlap must be one of skip, queue/)
    assert.throws(parse({cron: '0 2 * * *', job_template: {input: '/x'}, surprise: 1}), /unknown key surprise/)
    assert.match(parseScheduleKeys({cron: '0 2 * * *', job_template: {input: '/x'}}, {source: 'api', where: 'b'}).id, /^s-[0-9a-f]{8}$/)
  })

  it('applySchedulePolicy: window, window_end and retry onto every job (a job\'s own win), override_window on a trigger', () => {
    const schedule = {retry: {backoff: 'fixed', max: 2}, window: '22:00-06:00', windowEnd: 'cancel'} as Schedule
    const doc = applySchedulePolicy({jobs: [{input: '/a'}, {input: '/b', window: '01:00-02:00'}]}, schedule, {overrideWindow: true})
    assert.deepEqual(doc, {
      jobs: [
        {input: '/a', override_window: true, retry: {backoff: 'fixed', max_retries: 2}, window: '22:00-06:00', window_end: 'cancel'},
        {input: '/b', override_window: true, retry: {backoff: 'fixed', max_retries: 2}, window: '01:00-02:00', window_end: 'cancel'},
      ],
    })
    assert.deepEqual(applySchedulePolicy({input: '/a'}, {} as Schedule), {input: '/a'})
  })
})
