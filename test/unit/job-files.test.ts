import assert from 'node:assert/strict'
import {mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {H2KError} from '@hyper2kvm/plugin-api'
import {mapForeignError} from '../../src/errors/map-foreign-error.js'
import {Ajv} from 'ajv'
import {parseDocument} from 'yaml'
import {didYouMean, editDistance} from '../../src/jobs/did-you-mean.js'
import {MAX_DOCUMENT_BYTES} from '../../src/jobs/document.js'
import {loadJobPlan} from '../../src/jobs/job-plan.js'
import {validateFile} from '../../src/jobs/validate-file.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const CASES = fileURLToPath(new URL('job-file-cases/', import.meta.url))
const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url))

interface Expect {
  code?: string
  contains?: string[]
  /** Substrings the message must not have (a secret's value). */
  absent?: string[]
  jobs?: number
  format?: string
  concurrency?: number
  kind?: string
}

/**
 * Data-driven: every folder in job-file-cases holds one file to validate and expect.json — either the
 * error code and substrings of its message, or facts about the valid plan.
 */
describe('job files, manifests and daemon configs (data-driven cases)', () => {
  for (const name of readdirSync(CASES).sort()) {
    const dir = join(CASES, name)
    const file = readdirSync(dir).find((f) => f !== 'expect.json')!
    const expect = JSON.parse(readFileSync(join(dir, 'expect.json'), 'utf8')) as Expect
    it(`${name}: ${expect.code ? `refused with ${expect.code}` : 'valid'}`, async () => {
      if (expect.code) {
        await assert.rejects(validateFile(join(dir, file)), (error: H2KError) => {
          assert.equal(error.code, expect.code, error.message)
          for (const text of expect.contains ?? []) assert.ok(error.message.includes(text), `expected "${text}" in:\n${error.message}`)
          for (const text of expect.absent ?? []) assert.ok(!JSON.stringify({details: error.details, message: error.message}).includes(text), `"${text}" quoted in:\n${error.message}`)
          return true
        })
      } else {
        const result = await validateFile(join(dir, file))
        if (expect.jobs !== undefined) assert.equal(result.jobs.length, expect.jobs)
        if (expect.format) assert.equal(result.jobs[0]!.format, expect.format)
        if (expect.kind) assert.equal(result.kind, expect.kind)
        if (expect.concurrency) assert.equal((await loadJobPlan(join(dir, file))).concurrency, expect.concurrency)
      }
    })
  }
})

describe('job file loading', () => {
  let dir: string
  let cleanup: () => void
  before(() => ({cleanup, dir} = makeTempDir()))
  after(() => cleanup())

  it('refuses a 100 MB job file by its size, before parsing it', async () => {
    const file = join(dir, 'huge.yaml')
    writeFileSync(file, '')
    const {truncateSync} = await import('node:fs')
    truncateSync(file, 100 * 1024 * 1024)
    const t0 = performance.now()
    await assert.rejects(loadJobPlan(file), (error: H2KError) => error.code === 'H2K_JOB_INVALID' && error.message.includes(`at most ${MAX_DOCUMENT_BYTES} bytes`))
    assert.ok(performance.now() - t0 < 1000, 'refused without reading the file')
  })

  it('resolves relative inputs and output_dir against the job file directory; top-level defaults, per-job overrides', async () => {
    const file = join(dir, 'batch.yaml')
    writeFileSync(file, 'output_dir: out\nfstab_mode: noop\ncompress: true\njobs:\n  - input: vms/a.vmdk\n    name: web\n  - input: /abs/b.vhdx\n    fstab_mode: bypath-only\n    initramfs_drivers: [virtio_blk, nvme]\n')
    const plan = await loadJobPlan(file)
    assert.equal(plan.kind, 'batch')
    assert.equal(plan.continueOnError, true)
    assert.equal(plan.concurrency, 1)
    const [a, b] = plan.jobs
    assert.equal(a!.name, 'web')
    assert.equal(a!.settings.input, join(dir, 'vms/a.vmdk'))
    assert.equal(a!.settings.outputDir, join(dir, 'out'))
    assert.equal(a!.settings.name, 'web')
    assert.equal(a!.settings.fix.fstabMode, 'noop')
    assert.equal(a!.settings.compress, true)
    assert.equal(b!.name, 'b')
    assert.equal(b!.settings.input, '/abs/b.vhdx')
    assert.equal(b!.settings.fix.fstabMode, 'bypath-only')
    assert.deepEqual(b!.settings.fix.initramfsDrivers, ['virtio_blk', 'nvme'])
  })

  it('initramfs_mode: per job and as a batch default, auto when unset, a value outside auto|append|rebuild refused', async () => {
    const file = join(dir, 'modes.yaml')
    writeFileSync(file, 'initramfs_mode: rebuild\njobs:\n  - input: a.vmdk\n  - input: b.vmdk\n    initramfs_mode: append\n')
    const [a, b] = (await loadJobPlan(file)).jobs
    assert.equal(a!.settings.fix.initramfsMode, 'rebuild')
    assert.equal(b!.settings.fix.initramfsMode, 'append')
    writeFileSync(file, 'input: a.vmdk\n')
    assert.equal((await loadJobPlan(file)).jobs[0]!.settings.fix.initramfsMode, 'auto')
    writeFileSync(file, 'input: a.vmdk\ninitramfs_mode: concatenate\n')
    await assert.rejects(loadJobPlan(file), (error: H2KError) => error.code === 'H2K_JOB_INVALID' && error.message.includes('initramfs_mode'))
  })

  it('lets explicit flags override the file and the file override defaults', async () => {
    const file = join(dir, 'one.yaml')
    writeFileSync(file, 'input: disk.vmdk\noutput_format: raw\nfix_grub: false\n')
    const plan = await loadJobPlan(file, {defaults: {'fix-grub': true, 'fstab-mode': 'noop'}, overrides: {format: 'vdi'}})
    const settings = plan.jobs[0]!.settings
    assert.equal(settings.format, 'vdi')
    assert.equal(settings.fix.grub, false)
    assert.equal(settings.fix.fstabMode, 'noop')
  })

  it('maps a manifest v1.0 onto the same settings', async () => {
    const file = join(dir, 'vm.json')
    writeFileSync(file, JSON.stringify({pipeline: {convert: {compress: true, output_format: 'qcow2'}, fix: {fstab: {mode: 'bypath-only'}, grub: {enabled: false}, initramfs: {drivers: ['virtio_blk'], regenerate: true}}, inspect: {enabled: true}, load: {source_path: 'd.vmdk', source_type: 'vmdk'}, validate: {boot_test: true, compare: true}}, version: '1.0'}))
    const plan = await loadJobPlan(file)
    assert.equal(plan.kind, 'manifest')
    assert.equal(plan.reportFile, join(dir, 'vm.report.json'))
    const s = plan.jobs[0]!.settings
    assert.equal(s.input, join(dir, 'd.vmdk'))
    assert.equal(s.outputDir, join(dir, 'out'))
    assert.equal(s.compress, true)
    assert.equal(s.fix.fstabMode, 'bypath-only')
    assert.equal(s.fix.grub, false)
    assert.deepEqual(s.fix.initramfsDrivers, ['virtio_blk'])
    assert.equal(s.verify, true)
    assert.equal(s.boot.verify, true)
    writeFileSync(file, JSON.stringify({pipeline: {inspect: {enabled: false}, load: {source_path: 'd.vmdk'}}, version: '1.0'}))
    assert.equal((await loadJobPlan(file)).jobs[0]!.settings.fix.enabled, false)
  })

  it('refuses an input that leaves restrict_inputs_to through a symlink', async () => {
    mkdirSync(join(dir, 'jail'))
    writeFileSync(join(dir, 'secret.raw'), 'x')
    symlinkSync(join(dir, 'secret.raw'), join(dir, 'jail', 'link.raw'))
    const file = join(dir, 'jail.yaml')
    writeFileSync(file, 'restrict_inputs_to: jail\ninput: jail/link.raw\n')
    await assert.rejects(loadJobPlan(file), (error: H2KError) => error.code === 'H2K_UNSAFE_PATH' && error.message.includes('jail.yaml:2:8'))
  })

  it('maps yaml and ajv errors in the one foreign-error map', () => {
    const yamlError = parseDocument('a: [1, 2\n').errors[0]
    const mapped = mapForeignError(yamlError, {path: 'x.yaml'})
    assert.equal(mapped.code, 'H2K_JOB_INVALID')
    assert.match(mapped.message, /^x\.yaml:\d+:\d+: /)
    const bomb = mapForeignError(new ReferenceError('Excessive alias count indicates a resource exhaustion attack'), {path: 'b.yaml'})
    assert.equal(bomb.code, 'H2K_JOB_INVALID')
    const ajv = new Ajv()
    const validate = ajv.compile({$async: true, properties: {a: {type: 'string'}}, type: 'object'})
    return (validate({a: 1}) as unknown as Promise<unknown>).catch((error: unknown) => {
      const fromAjv = mapForeignError(error, {path: 'c.json'})
      assert.equal(fromAjv.code, 'H2K_JOB_INVALID')
      assert.match(fromAjv.message, /c\.json: \/a must be string/)
    })
  })

  it('suggests near keys only', () => {
    assert.equal(editDistance('out_formt', 'out_format'), 1)
    assert.equal(didYouMean('out_formt', ['output_format', 'out_format']), 'out_format')
    assert.equal(didYouMean('fstab-mode', ['fstab_mode']), 'fstab_mode')
    assert.equal(didYouMean('colour', ['input', 'name']), undefined)
  })
})

describe('examples/', () => {
  for (const name of readdirSync(EXAMPLES).filter((f) => /\.(ya?ml|json)$/.test(f))) {
    it(`${name} validates and names its schema for editors`, async () => {
      const text = readFileSync(join(EXAMPLES, name), 'utf8')
      assert.match(text, /yaml-language-server: \$schema=\.\.\/schemas\/|"\$schema": "\.\.\/schemas\//)
      const result = await validateFile(join(EXAMPLES, name))
      assert.equal(result.valid, true)
    })
  }
})
