import assert from 'node:assert/strict'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {nonSnakeKeys} from '../helpers/json-keys.js'
import {makePatternedRaw} from '../helpers/patterned-image.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/**
 * One JSON key convention for everything hyper2kvm defines: snake_case, like the seeds' files and our own
 * job files, manifests and daemon configs. `convert`/`batch` used to print camelCase (`jobId`, `durationMs`,
 * `outputs[].virtualSize`, `error.exitCode`) while `ctl`/`dedup`/`errors` printed snake_case.
 */
describe('every JSON we print or write has snake_case keys', function () {
  this.timeout(120_000)
  let dir: string
  let cleanup: () => void
  before(() => {
    ;({cleanup, dir} = makeTempDir())
    mkdirSync(join(dir, 'vms'))
    makePatternedRaw(join(dir, 'vms', 'alpha.raw'))
  })
  after(() => cleanup())

  const snake = (what: string, json: unknown, opaque: string[] = []): void => {
    assert.ok(json !== undefined, `${what}: JSON expected`)
    assert.deepEqual(nonSnakeKeys(json, opaque), [], `${what} has keys that are not snake_case`)
  }

  it('convert --json and <name>.report.json (job_id, duration_ms, outputs[].virtual_size …)', async () => {
    const result = await runCli(['convert', join(dir, 'vms', 'alpha.raw'), '-o', join(dir, 'out-convert'), '--verify', '--checksum', '--json'])
    assert.equal(result.code, 0, result.stderr)
    snake('convert --json', result.json)
    for (const key of ['job_id', 'started_at', 'duration_ms']) assert.ok(key in result.json, key)
    assert.ok(result.json.outputs[0].virtual_size > 0 && result.json.outputs[0].bytes_on_disk > 0)
    assert.ok(result.json.stages.every((s: {duration_ms: unknown}) => typeof s.duration_ms === 'number'))
    const report = JSON.parse(readFileSync(result.json.report, 'utf8'))
    snake('report.json', report)
    assert.deepEqual(report, result.json)
  })

  it('inspect --json', async () => {
    const result = await runCli(['inspect', join(dir, 'vms', 'alpha.raw'), '--json'])
    assert.equal(result.code, 0, result.stderr)
    snake('inspect --json', result.json)
  })

  it('batch --json, a manifest report, validate --json', async () => {
    writeFileSync(join(dir, 'batch.yaml'), 'output_dir: out-batch\njobs:\n  - input: vms/alpha.raw\n')
    const batch = await runCli(['batch', join(dir, 'batch.yaml'), '--json'])
    assert.equal(batch.code, 0, batch.stderr)
    snake('batch --json', batch.json)
    assert.equal(typeof batch.json.jobs[0].duration_ms, 'number')
    const validated = await runCli(['validate', join(dir, 'batch.yaml'), '--json'])
    snake('validate --json', validated.json)
    assert.equal(validated.json.jobs[0].output_dir, join(dir, 'out-batch'))

    writeFileSync(join(dir, 'vm.json'), JSON.stringify({pipeline: {convert: {output_dir: 'out-manifest'}, load: {source_path: 'vms/alpha.raw'}}, version: '1.0'}))
    const manifest = await runCli(['batch', join(dir, 'vm.json'), '--json'])
    assert.equal(manifest.code, 0, manifest.stderr)
    const report = JSON.parse(readFileSync(join(dir, 'vm.report.json'), 'utf8'))
    snake('<manifest>.report.json', report)
    assert.equal(typeof report.duration_ms, 'number')
    assert.equal(typeof report.started_at, 'string')
    assert.equal(typeof report.result.job_id, 'string')
  })

  it('an error object, its details included (error.exit_code, details.restrict_inputs_to)', async () => {
    writeFileSync(join(dir, 'outside.yaml'), 'output_dir: never\nrestrict_inputs_to: vms\njobs:\n  - input: outside.raw\n')
    makePatternedRaw(join(dir, 'outside.raw'))
    const result = await runCli(['batch', join(dir, 'outside.yaml'), '--json'])
    assert.equal(result.json.status, 'failed', result.stdout)
    snake('the error of batch --json', result.json)
    assert.equal(result.json.error.exit_code, result.code)
    assert.equal(result.json.error.details.restrict_inputs_to, join(dir, 'vms'))
  })

  it('plugins --json, config show --json, secrets list --json', async () => {
    for (const argv of [['plugins'], ['config', 'show'], ['secrets', 'list']]) {
      const result = await runCli([...argv, '--json'], {cwd: dir})
      snake(`${argv.join(' ')} --json`, result.json)
    }
  })
})
