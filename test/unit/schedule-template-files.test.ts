import assert from 'node:assert/strict'
import {mkdirSync, renameSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expandTemplate} from '../../src/schedule/job-template.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('schedule templates: files opened without following links, checked after the open, never quoted', function () {
  this.timeout(60_000)
  let temp: ReturnType<typeof makeTempDir>
  let allowed: string
  beforeEach(() => {
    temp = makeTempDir('h2k-tplfiles-')
    allowed = join(temp.dir, 'in')
    mkdirSync(allowed)
    mkdirSync(join(temp.dir, 'secret'))
    writeFileSync(join(temp.dir, 'secret', 'job.yaml'), 'db_password: hunter2\napi_key: sk-live-ABCDEF\n')
    mkdirSync(join(temp.dir, 'secret', 'sw'))
    writeFileSync(join(temp.dir, 'secret', 'sw', 'private-vm.raw'), 'x')
  })
  afterEach(() => temp.cleanup())

  /** Swap `link` between the real directory and the secret one as fast as the event loop allows, while `fn` runs. */
  async function racing(real: string, link: string, fn: () => Promise<string>): Promise<string[]> {
    let stop = false
    const swapper = (async () => {
      while (!stop) {
        for (const target of [real, join(temp.dir, 'secret')]) {
          symlinkSync(target, `${link}.n`)
          renameSync(`${link}.n`, link)
          await new Promise((resolve) => setImmediate(resolve))
        }
      }
    })()
    const said: string[] = []
    try {
      for (let i = 0; i < 300; i++) said.push(await fn())
    } finally {
      stop = true
      await swapper
    }
    return said
  }

  const outcome = (p: Promise<unknown>): Promise<string> => p.then((v) => JSON.stringify(v), (e: Error) => `${e.message} ${JSON.stringify((e as {details?: unknown}).details ?? {})}`)

  it('a job_file whose directory is swapped for a link while triggers run never parses the file outside', async () => {
    const real = join(allowed, 'tpl.real')
    mkdirSync(real)
    writeFileSync(join(real, 'job.yaml'), `input: ${join(allowed, 'none.raw')}\n`)
    const said = await racing(real, join(allowed, 'tpl'), () => outcome(expandTemplate({job_file: join(allowed, 'tpl', 'job.yaml')}, {allowedInputDirs: [allowed], source: 'api'})))
    assert.ok(said.some((s) => s.includes('none.raw')), 'the real template was read some of the time')
    assert.deepEqual(said.filter((s) => /db_password|hunter2|api_key/.test(s)), [])
  })

  it('a sweep_dir swapped for a link while triggers run never lists the directory outside', async () => {
    const real = join(allowed, 'tpl.real')
    mkdirSync(join(real, 'sw'), {recursive: true})
    writeFileSync(join(real, 'sw', 'web01.raw'), 'x')
    const said = await racing(real, join(allowed, 'tpl'), () => outcome(expandTemplate({sweep_dir: join(allowed, 'tpl', 'sw')}, {allowedInputDirs: [allowed], source: 'api'})))
    assert.ok(said.some((s) => s.includes('web01.raw')))
    assert.deepEqual(said.filter((s) => /private-vm/.test(s)), [])
  })

  it('a template that fails parsing or validation is told by key paths and positions, never by its values', async () => {
    writeFileSync(join(allowed, 'syntax.yaml'), 'input: x\n  db_password: hunter2: nested\n')
    const err = await expandTemplate({job_file: join(allowed, 'syntax.yaml')}, {allowedInputDirs: [allowed], source: 'api'}).then(() => undefined, (e: Error) => e)
    assert.ok(err, 'a syntax error is refused')
    assert.doesNotMatch(`${err.message} ${JSON.stringify((err as {details?: unknown}).details)}`, /hunter2/)
    writeFileSync(join(allowed, 'manifest.yaml'), 'version: "1.0"\npipeline:\n  load: {source_type: vmdk, source_path: 12345-secret-number}\n  convert: {output_format: hunter2-format}\n')
    const bad = await expandTemplate({manifest: join(allowed, 'manifest.yaml')}, {allowedInputDirs: [allowed], source: 'api'}).then(() => undefined, (e: Error) => e)
    assert.ok(bad, 'an invalid manifest is refused')
    assert.doesNotMatch(`${bad.message} ${JSON.stringify((bad as {details?: unknown}).details)}`, /hunter2/)
  })

  it('a job_file that is itself a symlink is refused without following it', async () => {
    symlinkSync(join(temp.dir, 'secret', 'job.yaml'), join(allowed, 'link.yaml'))
    const err = await expandTemplate({job_file: join(allowed, 'link.yaml')}, {allowedInputDirs: [allowed], source: 'config'}).then(() => undefined, (e: Error) => e)
    assert.match(String(err?.message), /symbolic link/)
    assert.doesNotMatch(String(err?.message), /secret|hunter2/)
  })
})

describe('schedule.missed reasons', () => {
  it('keep codes, key paths and positions, never a refused value', async () => {
    const {H2KError} = await import('@hyper2kvm/plugin-api')
    const {missedReason} = await import('../../src/schedule/missed-reason.js')
    const reason = missedReason(new H2KError('H2K_JOB_INVALID', '/in/job.yaml is not a valid job file:\n/in/job.yaml:2:16: output_format: must be one of qcow2, raw (got "hunter2")\n/in/job.yaml:3:1: db_password: unknown key'))
    assert.doesNotMatch(reason, /hunter2/)
    assert.match(reason, /^H2K_JOB_INVALID: /)
    assert.match(reason, /2:16: output_format: must be one of qcow2, raw$/m)
    assert.match(reason, /db_password: unknown key/)
  })
})
