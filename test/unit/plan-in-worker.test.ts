import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {isH2KError} from '@hyper2kvm/plugin-api'
import {loadJobPlanInWorker} from '../../src/jobs/plan-in-worker.js'
import {excessNesting, MAX_NESTING_DEPTH} from '../../src/jobs/nesting-depth.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('documents: nesting cap and planning off the event loop', function () {
  this.timeout(30_000)
  let dir: string
  let cleanup: () => void
  before(() => ({cleanup, dir} = makeTempDir('h2k-plan-worker-')))
  after(() => cleanup())

  it('counts flow, block and compact nesting, and lets the shipped examples through', () => {
    const flow = (n: number): string => `x: ${'['.repeat(n)}${']'.repeat(n)}\n`
    assert.equal(excessNesting(flow(MAX_NESTING_DEPTH - 2)), undefined)
    assert.deepEqual(excessNesting(flow(MAX_NESTING_DEPTH + 1)), {line: 1})
    const block = Array.from({length: 80}, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n')
    assert.ok(excessNesting(`a: 1\n${block} 1\n`)!.line > MAX_NESTING_DEPTH)
    assert.ok(excessNesting(`x:\n  ${'- '.repeat(80)}1\n`))
    assert.equal(excessNesting('a: "[[[[" \nb: {c: [1, 2, {d: e}]}\n# [[[[[[\n'), undefined, 'brackets in quoted scalars and comments are no nesting')
  })

  it('plans a job file in a worker thread', async () => {
    const file = join(dir, 'job.yaml')
    writeFileSync(file, 'input: disk.raw\nname: web01\n')
    const plan = await loadJobPlanInWorker(file)
    assert.equal(plan.jobs[0]!.name, 'web01')
    assert.equal(plan.jobs[0]!.settings.input, join(dir, 'disk.raw'))
  })

  it('an error in the worker comes back as the same H2KError', async () => {
    const file = join(dir, 'bad.yaml')
    writeFileSync(file, 'input: disk.raw\noutput_fromat: raw\n')
    const error = await loadJobPlanInWorker(file).then(() => undefined, (e: unknown) => e)
    assert.ok(isH2KError(error))
    assert.equal(error.code, 'H2K_JOB_INVALID')
    assert.match(error.message, /did you mean "output_format"/)
  })

  it('a worker that overruns its time budget is terminated: permanent H2K_JOB_INVALID', async () => {
    const file = join(dir, 'slow.yaml')
    writeFileSync(file, 'input: disk.raw\n')
    const started = Date.now()
    const error = await loadJobPlanInWorker(file, {budgetMs: 1}).then(() => undefined, (e: unknown) => e)
    assert.ok(isH2KError(error))
    assert.equal(error.code, 'H2K_JOB_INVALID')
    assert.equal(error.permanent, true)
    assert.equal(error.details.reason, 'time-budget')
    assert.ok(Date.now() - started < 2000)
  })
})
