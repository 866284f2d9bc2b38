import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import Database from 'better-sqlite3'

import {type ApiSession as Session, ApiSession, apiPort} from '../helpers/api-session.js'
import {type RunningDaemon, startDaemon, until} from '../helpers/daemon-process.js'
import {daemonSuite} from '../helpers/daemon-suite.js'

const TOKEN = 'c0ffee00c0ffee00c0ffee00c0ffee00'
const MARKER = 'TOPSECRET-MARKER-1234'
const TERMINAL = new Set(['succeeded', 'failed', 'dead', 'cancelled', 'skipped'])

async function settled(api: Session, id: string): Promise<any> {
  for (let i = 0; i < 600; i++) {
    const answer = await api.call('GET', `/api/v1/jobs/${id}`)
    if (TERMINAL.has(answer.body.job.status)) return answer.body
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`job ${id} did not settle`)
}

/** Every file under `dir` whose bytes hold the secret marker. */
function holdingMarker(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, {recursive: true}).map(String).filter((f) => {
    try {
      return readFileSync(join(dir, f)).includes(MARKER)
    } catch {
      return false
    }
  })
}

describe('untrusted input after submit: inputs re-checked, outputs never shared, sweep patterns linear', function () {
  this.timeout(120_000)
  const suite = daemonSuite('h2k-untrusted-', {killAfter: 'all'})
  let d: RunningDaemon
  let api: ApiSession
  let base: string
  let disks: string
  let out: string
  before(async () => {
    base = suite.dir
    disks = join(base, 'disks')
    out = join(base, 'out')
    mkdirSync(join(disks, 'sub'), {recursive: true})
    mkdirSync(join(base, 'queue'))
    mkdirSync(join(base, 'secret'))
    const secret = Buffer.alloc(1024 * 1024)
    secret.write(MARKER)
    writeFileSync(join(base, 'secret', 'x.raw'), secret)
    writeFileSync(join(base, 't'), `${TOKEN}\n`, {mode: 0o600})
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, `command: daemon\nwatch_dir: ${join(base, 'queue')}\noutput_dir: ${out}\nallowed_input_dirs: [${disks}]\nfix: false\napi: ${JSON.stringify({enabled: true, port: 0, rate_limit: {burst: 5000, requests_per_minute: 60000}, token_file: join(base, 't')})}\n`)
    d = await startDaemon(['--config', config, '--output-dir', out])
    suite.daemons.push(d)
    api = new ApiSession(await apiPort(d), TOKEN)
  })

  it('a retry after a directory on the input path became a symlink is refused, nothing outside allowed_input_dirs is read', async () => {
    const input = join(disks, 'sub', 'x.raw')
    writeFileSync(input, '') // an empty file fails at once
    const sub = await api.call('POST', '/api/v1/jobs', {body: {input, output_format: 'raw', retry: {max_retries: 0}}})
    assert.equal(sub.status, 201, sub.text)
    const id = sub.body.jobs[0].id
    assert.equal((await settled(api, id)).job.status, 'failed')
    renameSync(join(disks, 'sub'), join(disks, 'sub.old'))
    symlinkSync(join(base, 'secret'), join(disks, 'sub'))
    const retry = await api.call('POST', `/api/v1/jobs/${id}/retry`)
    assert.equal(retry.status, 403, retry.text)
    assert.equal(retry.body.error.code, 'H2K_UNSAFE_PATH')
    assert.doesNotMatch(retry.text, /secret/, 'where the link points is not said')
    assert.deepEqual(holdingMarker(out), [])
  })

  it('a job whose input path is swapped while it waits for its parent fails H2K_UNSAFE_PATH when it starts', async () => {
    mkdirSync(join(disks, 'late'))
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', join(disks, 'late', 'x.raw'), '1M'])
    // The parent's conversion (a second or so) is the wait; a window or a long queue would do the same.
    const parentInput = join(disks, 'parent.raw')
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', parentInput, '16M'])
    const sub = await api.call('POST', '/api/v1/jobs', {body: {jobs: [{input: parentInput, name: 'parent'}, {depends_on: ['parent'], input: join(disks, 'late', 'x.raw'), name: 'late', output_format: 'raw'}]}})
    assert.equal(sub.status, 201, sub.text)
    renameSync(join(disks, 'late'), join(disks, 'late.old'))
    symlinkSync(join(base, 'secret'), join(disks, 'late'))
    const [parent, child] = sub.body.jobs.map((j: {id: string}) => j.id)
    assert.equal((await settled(api, parent)).job.status, 'succeeded')
    const done = await settled(api, child)
    assert.equal(done.job.status, 'failed', JSON.stringify(done.job))
    assert.match(JSON.stringify(done.error ?? done.job.error), /H2K_UNSAFE_PATH/)
    assert.doesNotMatch(JSON.stringify(done), /secret/, 'where the link points is not said')
    assert.deepEqual(holdingMarker(out), [])
  })

  it('retrying an old job never clears the outputs of a newer job of the same name', async () => {
    writeFileSync(join(disks, 'empty.raw'), '')
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', join(disks, 'good.raw'), '1M'])
    const a = await api.call('POST', '/api/v1/jobs', {body: {input: join(disks, 'empty.raw'), name: 'web01', retry: {max_retries: 0}}})
    const aId = a.body.jobs[0].id
    const aDone = await settled(api, aId)
    assert.equal(aDone.job.status, 'failed')
    const b = await api.call('POST', '/api/v1/jobs', {body: {input: join(disks, 'good.raw'), name: 'web01'}})
    const bDone = await settled(api, b.body.jobs[0].id)
    assert.equal(bDone.job.status, 'succeeded')
    assert.notEqual(bDone.job.output_path, aDone.job.output_path, 'a path a finished job holds is taken')
    const before = readdirSync(bDone.job.output_path).sort()
    assert.ok(before.length > 0)
    // A job of the same name while A keeps its path: B's directory must survive A's retry.
    assert.equal((await api.call('POST', `/api/v1/jobs/${aId}/retry`)).status, 200)
    assert.equal((await settled(api, aId)).job.status, 'failed')
    assert.deepEqual(readdirSync(bDone.job.output_path).sort(), before)
  })

  it('a job sharing its output path with another (a store of an older build) gets a new path before its attempt clears anything', async () => {
    writeFileSync(join(disks, 'empty2.raw'), '')
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', join(disks, 'good2.raw'), '1M'])
    const a = await api.call('POST', '/api/v1/jobs', {body: {input: join(disks, 'empty2.raw'), name: 'web02', retry: {max_retries: 0}}})
    const aId = a.body.jobs[0].id
    assert.equal((await settled(api, aId)).job.status, 'failed')
    const b = await api.call('POST', '/api/v1/jobs', {body: {input: join(disks, 'good2.raw'), name: 'web02'}})
    const bDone = await settled(api, b.body.jobs[0].id)
    assert.equal(bDone.job.status, 'succeeded')
    const before = readdirSync(bDone.job.output_path).sort()
    // What main's builds recorded: A's row names B's directory.
    const db = new Database(join(out, '.daemon', 'jobs.db'))
    try {
      db.prepare('UPDATE jobs SET output_path = ? WHERE id = ?').run(bDone.job.output_path, aId)
    } finally {
      db.close()
    }
    assert.equal((await api.call('POST', `/api/v1/jobs/${aId}/retry`)).status, 200)
    const aDone = await settled(api, aId)
    assert.notEqual(aDone.job.output_path, bDone.job.output_path)
    assert.ok(aDone.history.some((h: {detail?: string}) => /belongs to job/.test(h.detail ?? '')), JSON.stringify(aDone.history))
    assert.deepEqual(readdirSync(bDone.job.output_path).sort(), before)
  })

  it('a store that refuses to record an attempt leaves the job queued (the claim is one transaction), and it runs once the store accepts it', async () => {
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', join(disks, 'orphan.raw'), '1M'])
    // The store refuses to record the attempt (a real store failure inside the claim that marks the job running).
    const db = new Database(join(out, '.daemon', 'jobs.db'))
    try {
      db.exec("CREATE TRIGGER refuse_attempts BEFORE INSERT ON job_attempts BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
      const sub = await api.call('POST', '/api/v1/jobs', {body: {input: join(disks, 'orphan.raw')}})
      const id = sub.body.jobs[0].id
      await until('claim:error', () => d.stderr().includes('Cannot record an attempt'), 20_000, d)
      const held = (await api.call('GET', `/api/v1/jobs/${id}`)).body.job
      assert.equal(held.status, 'queued', 'the claim rolled back: never running without its attempt')
      db.exec('DROP TRIGGER refuse_attempts')
      const done = (await settled(api, id)).job
      assert.equal(done.status, 'succeeded')
      assert.equal(done.attempts, 1, 'the refused claims left no attempt behind')
    } finally {
      db.close()
    }
  })

})
