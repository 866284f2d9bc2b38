import {Ajv} from 'ajv'
import assert from 'node:assert/strict'

import {OPTIONS_SCHEMA, parseOptions} from '../src/marker-options.js'
import {STAGE_NAME, migrationMarker} from '../src/migration-marker.js'
import {MAX_RECORD_BYTES, RECORD_HEADER, RECORD_PATH} from '../src/migration-record.js'
import register from '../src/register.js'
import {FakeGuest, fakeJob} from './fake-guest.js'
import {api} from './host-api.js'

const JAN_1 = new Date('2027-01-01T10:00:00.000Z')
const stage = (version = '0.1.0', now = JAN_1) => migrationMarker(api, {hostVersion: version, now: () => now})

describe('plugin example: fixer:migration-marker', () => {
  it('writes the record of the migration and reports it as a change', async () => {
    const guest = new FakeGuest()
    const job = fakeJob(guest, {format: 'vmdk', input: '/srv/exports/web01.vmdk', options: {note: 'CHG-1234'}})
    await stage().run(job.ctx)
    const text = guest.file(RECORD_PATH)
    assert.equal(text, `${RECORD_HEADER}\n# This machine was converted to KVM by hyper2kvm. A later conversion replaces this file.\nsource=web01.vmdk\nsource_format=vmdk\nmigrated_at=2027-01-01T10:00:00.000Z\nhyper2kvm_version=0.1.0\nnote=CHG-1234\n`)
    assert.deepEqual(job.changes, [{after: text, before: null, path: RECORD_PATH, reason: 'migration record written', stage: 'fixer:migration-marker'}])
    assert.deepEqual(job.warnings, [])
  })

  it('leaves out what it does not know: no note, no host version', async () => {
    const guest = new FakeGuest()
    await migrationMarker(api, {now: () => JAN_1}).run(fakeJob(guest).ctx)
    assert.doesNotMatch(guest.file(RECORD_PATH)!, /^(note|hyper2kvm_version)=/m)
  })

  it('a second conversion replaces its own record, and the report shows the old one', async () => {
    const guest = new FakeGuest()
    await stage('0.1.0').run(fakeJob(guest).ctx)
    const first = guest.file(RECORD_PATH)
    const job = fakeJob(guest, {format: 'raw', input: '/data/web01-again.raw'})
    await stage('0.2.0', new Date('2027-02-01T00:00:00.000Z')).run(job.ctx)
    const second = guest.file(RECORD_PATH)!
    assert.match(second, /^source=web01-again\.raw$/m)
    assert.match(second, /^migrated_at=2027-02-01T00:00:00\.000Z$/m)
    assert.equal(second.split('\n').filter((line) => line.startsWith('source=')).length, 1, 'replaced, not appended')
    assert.deepEqual(job.changes, [{after: second, before: first, path: RECORD_PATH, reason: 'migration record replaced (an earlier conversion wrote one)', stage: 'fixer:migration-marker'}])
  })

  it('a file at that path that it did not write is left alone, with a warning', async () => {
    const guest = new FakeGuest()
    guest.nodes.set(RECORD_PATH, {content: 'migrated by hand in 2019\n', kind: 'file'})
    const job = fakeJob(guest)
    await stage().run(job.ctx)
    assert.equal(guest.file(RECORD_PATH), 'migrated by hand in 2019\n')
    assert.deepEqual(job.changes, [])
    assert.deepEqual(job.warnings.map((w) => w.code), ['MIGRATION_RECORD_SKIPPED'])
    assert.doesNotMatch(job.warnings[0]!.message, /2019/, 'the guest file is not quoted')
  })

  it('never follows a symbolic link the guest put there, and never says where it points', async () => {
    const guest = new FakeGuest()
    guest.nodes.set('/etc/shadow', {content: 'root:*:19000:0:99999:7:::\n', kind: 'file'})
    guest.nodes.set(RECORD_PATH, {kind: 'symlink', target: '/etc/shadow'})
    const job = fakeJob(guest)
    await stage().run(job.ctx)
    assert.equal(guest.file('/etc/shadow'), 'root:*:19000:0:99999:7:::\n')
    assert.deepEqual(job.changes, [])
    assert.deepEqual(job.warnings.map((w) => w.code), ['MIGRATION_RECORD_SKIPPED'])
    assert.doesNotMatch(job.warnings[0]!.message, /shadow/)
  })

  it('does not read a large file at that path, even one that starts like its record', async () => {
    const guest = new FakeGuest()
    const large = `${RECORD_HEADER}\n${'x'.repeat(MAX_RECORD_BYTES)}\n`
    guest.nodes.set(RECORD_PATH, {content: large, kind: 'file'})
    const job = fakeJob(guest)
    await stage().run(job.ctx)
    assert.equal(guest.file(RECORD_PATH), large)
    assert.deepEqual(job.warnings.map((w) => w.code), ['MIGRATION_RECORD_SKIPPED'])
  })

  it('a directory at that path is left alone', async () => {
    const guest = new FakeGuest()
    guest.nodes.set(RECORD_PATH, {kind: 'dir'})
    const job = fakeJob(guest)
    await stage().run(job.ctx)
    assert.deepEqual(guest.nodes.get(RECORD_PATH), {kind: 'dir'})
    assert.deepEqual(job.warnings.map((w) => w.code), ['MIGRATION_RECORD_SKIPPED'])
  })

  it('a guest whose /etc is not a directory fails the stage with H2K_FIX_FAILED', async () => {
    const guest = new FakeGuest()
    guest.nodes.set('/etc', {kind: 'symlink', target: '/'})
    await assert.rejects(stage().run(fakeJob(guest).ctx), (error: unknown) => error instanceof api.H2KError && error.code === 'H2K_FIX_FAILED')
    assert.equal(guest.file(RECORD_PATH), undefined)
  })

  it('a source name or note cannot add lines to the record', async () => {
    const guest = new FakeGuest()
    await stage().run(fakeJob(guest, {input: '/in/evil\nnote=forged.raw'}).ctx)
    const lines = guest.file(RECORD_PATH)!.split('\n')
    assert.ok(lines.includes('source=evil note=forged.raw'), lines.join('\n'))
    assert.ok(!lines.includes('note=forged.raw'))
  })

  const badOptions = {
    'an unknown option': {colour: 'blue'},
    'a note that is not a string': {note: 42},
    'a note of two lines': {note: 'one\ntwo'},
    'a note that is too long': {note: 'x'.repeat(201)},
  }
  for (const [name, options] of Object.entries(badOptions)) {
    it(`refuses ${name} with H2K_STAGE_OPTIONS_INVALID and writes nothing`, async () => {
      const guest = new FakeGuest()
      await assert.rejects(stage().run(fakeJob(guest, {options}).ctx), (error: unknown) => error instanceof api.H2KError && error.code === 'H2K_STAGE_OPTIONS_INVALID')
      assert.equal(guest.file(RECORD_PATH), undefined)
    })
  }

  it('its JSON Schema accepts and refuses exactly what the stage does (the host validates with ajv before the job)', () => {
    const validate = new Ajv({allErrors: true, strict: true}).compile(OPTIONS_SCHEMA)
    for (const options of [{}, {note: 'CHG-1234'}, {note: 'x'.repeat(200)}]) {
      assert.equal(validate(options), true, JSON.stringify(validate.errors))
      assert.ok('options' in parseOptions(options))
    }
    for (const [name, options] of Object.entries(badOptions)) {
      assert.equal(validate(options), false, name)
      assert.ok('problem' in parseOptions(options), name)
    }
  })

  it('applies to an inspected Linux guest only', async () => {
    const marker = stage()
    assert.equal(await marker.applies!(fakeJob(new FakeGuest(), {os: 'linux'}).ctx), true)
    assert.equal(await marker.applies!(fakeJob(new FakeGuest(), {os: 'windows'}).ctx), false)
    assert.equal(await marker.applies!(fakeJob(new FakeGuest(), {os: 'unknown'}).ctx), false)
  })

  it('the hook registers one fixer for API version 1, after the stock fixers, with its options schema', async () => {
    const registration = await register({api, config: {version: '9.9.9'}})
    assert.equal(registration.apiVersion, 1)
    assert.equal(registration.stages.length, 1)
    const [marker] = registration.stages as [ReturnType<typeof migrationMarker>]
    assert.equal(marker.kind, 'fixer')
    assert.equal(marker.name, STAGE_NAME)
    assert.deepEqual(marker.after, ['fstab', 'grub', 'initramfs'])
    assert.equal(marker.options?.schema, OPTIONS_SCHEMA)
    const guest = new FakeGuest()
    await marker.run(fakeJob(guest).ctx)
    assert.match(guest.file(RECORD_PATH)!, /^hyper2kvm_version=9\.9\.9$/m)
  })

  it('the hook fails clearly on a host that passes no API', async () => {
    await assert.rejects(register({}), /passes its plugin API/)
  })
})
