import assert from 'node:assert/strict'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {loadDaemonConfig} from '../../src/daemon/config.js'
import {droppedDocumentPlanOptions} from '../../src/daemon/intake-items.js'
import type {H2KError, JobSettings} from '@hyper2kvm/plugin-api'
import registerCore from '../../src/hooks/register-core.js'
import {settingsFromFlags} from '../../src/job-flags.js'
import {loadConfig} from '../../src/jobs/config.js'
import {type FlagValues, loadJobPlan} from '../../src/jobs/job-plan.js'
import {parseStageOptionFlags} from '../../src/jobs/stage-option-layer.js'
import {resolveStageOptions} from '../../src/stages/stage-options.js'
import {StageRegistry} from '../../src/stages/stage-registry.js'

const CASES = fileURLToPath(new URL('stage-option-cases/', import.meta.url))
/** The third-party test plugin the integration tests link into a data dir; here its hook is called directly. */
const OPTIONS_PLUGIN = new URL('../fixtures/plugins/options-echo/register.js', import.meta.url).href
const ECHO = 'verifier:options-echo'

interface Expect {
  code?: string
  contains?: string[]
  /** Substrings neither the message nor the details may hold (the value given: it may be a secret). */
  absent?: string[]
  /** verifier:options-echo's options as the stage reads them (single job). */
  options?: Record<string, unknown>
  /** The same, per job of a batch. */
  jobs?: Array<Record<string, unknown>>
}

async function testRegistry(): Promise<StageRegistry> {
  const api = await import('../../src/plugin-api.js')
  const hook = (await import(OPTIONS_PLUGIN)) as {default: (options: {api: unknown}) => Promise<unknown>}
  return StageRegistry.fromContributions([
    {plugin: {name: 'hyper2kvm', version: '0.1.0'}, result: await registerCore()},
    {plugin: {name: 'h2k-test-options-echo', version: '1.0.0'}, result: await hook.default({api})},
  ])
}

/**
 * The settings of every job of a case, as the commands build them: a configuration (config.yaml, or the
 * daemon's daemon.yaml) under the document (job.yaml/json, manifest.json: a job file dropped into the daemon)
 * under --stage-option flags (flags.json).
 */
async function caseSettings(dir: string): Promise<JobSettings[]> {
  const file = (name: string): string | undefined => (existsSync(join(dir, name)) ? join(dir, name) : undefined)
  const flags = file('flags.json')
  const overrides: FlagValues | undefined = flags ? {'stage-option': JSON.parse(readFileSync(flags, 'utf8')) as string[]} : undefined
  let defaults: FlagValues | undefined
  const daemon = file('daemon.yaml')
  if (daemon) defaults = (await loadDaemonConfig({config: daemon})).jobDefaults
  const config = file('config.yaml')
  if (config) defaults = (await loadConfig({configPath: config})).flags
  const document = file('job.yaml') ?? file('job.json') ?? file('manifest.json')
  // A daemon with no document: a dropped disk, with the daemon's defaults (as definitionFor builds it).
  if (!document) return [settingsFromFlags(join(dir, 'disk.raw'), {...defaults, name: 'disk', 'output-dir': join(dir, 'out')})]
  // A document dropped into the daemon is planned the daemon's way (its configuration's stage options win).
  const plan = daemon ? droppedDocumentPlanOptions(dir, defaults ?? {}) : {defaults, overrides}
  return (await loadJobPlan(document, plan)).jobs.map((j) => j.settings)
}

/**
 * Data-driven: each folder of stage-option-cases is one way stage options reach a job (job file, batch,
 * manifest, configuration, daemon config, --stage-option) and what the stage must see, or the error (code,
 * file:line:column) the user must get.
 */
describe('stage options (data-driven cases)', () => {
  let registry: StageRegistry
  before(async () => {
    registry = await testRegistry()
  })

  for (const name of readdirSync(CASES).sort()) {
    const dir = join(CASES, name)
    const expect = JSON.parse(readFileSync(join(dir, 'expect.json'), 'utf8')) as Expect
    it(`${name}: ${expect.code ? `refused with ${expect.code}` : 'the stage sees its options'}`, async () => {
      const run = async () => {
        const resolved = []
        for (const settings of await caseSettings(dir)) resolved.push((await resolveStageOptions(registry, settings)).get(ECHO))
        return resolved
      }
      if (expect.code) {
        await assert.rejects(run(), (error: H2KError) => {
          assert.equal(error.code, expect.code, error.message)
          for (const text of expect.contains ?? []) assert.ok(error.message.includes(text), `expected "${text}" in:\n${error.message}`)
          for (const text of expect.absent ?? []) assert.ok(!JSON.stringify({details: error.details, message: error.message}).includes(text), `"${text}" quoted in:\n${error.message}`)
          return true
        })
        return
      }
      const resolved = await run()
      if (expect.options) assert.deepEqual(resolved, [expect.options])
      if (expect.jobs) assert.deepEqual(resolved, expect.jobs)
      // What the stage reads is frozen: one stage cannot change what the next job's stage sees.
      for (const options of resolved) assert.ok(Object.isFrozen(options))
    })
  }
})

describe('stage options: the rest of the contract', () => {
  it('a stage without a schema reads {} as ctx.options; a schema with a required key refuses a job that does not give it', async () => {
    const required = StageRegistry.fromContributions([
      {plugin: {name: 'p', version: '1'}, result: {apiVersion: 1, stages: [
        {kind: 'fixer', name: 'plain', run: async () => {}},
        {kind: 'fixer', name: 'needs-note', options: {schema: {type: 'object', properties: {note: {type: 'string'}}, required: ['note']}}, run: async () => {}},
      ]}},
    ])
    await assert.rejects(resolveStageOptions(required, {stageOptions: {}}), (error: H2KError) => {
      assert.equal(error.code, 'H2K_STAGE_OPTIONS_INVALID')
      assert.match(error.message, /stage fixer:needs-note: fixer:needs-note: missing required option "note" \(give it with --stage-option fixer:needs-note\.note=… or stage_options/)
      return true
    })
    const resolved = await resolveStageOptions(required, {stageOptions: {'fixer:needs-note': {note: 'x'}}})
    assert.deepEqual(resolved.get('fixer:plain'), {})
    assert.deepEqual(resolved.get('fixer:needs-note'), {note: 'x'})
  })

  it('a schema ajv cannot compile is the plugin\'s fault (H2K_PLUGIN_INVALID naming the stage), not the user\'s', async () => {
    const broken = StageRegistry.fromContributions([
      {plugin: {name: 'p', version: '1'}, result: {apiVersion: 1, stages: [{kind: 'fixer', name: 'odd', options: {schema: {type: 'object', properties: {a: {type: 'strnig'}}}}, run: async () => {}}]}},
    ])
    await assert.rejects(resolveStageOptions(broken, {stageOptions: {}}), (error: H2KError) => error.code === 'H2K_PLUGIN_INVALID' && error.message.includes('fixer:odd'))
  })

  it('an $async schema is refused as the plugin\'s fault: its validator answers with a promise, which counted as "valid" for any options', async () => {
    const asyncSchema = StageRegistry.fromContributions([
      {plugin: {name: 'p', version: '1'}, result: {apiVersion: 1, stages: [{kind: 'fixer', name: 'lazy', options: {schema: {$async: true, type: 'object', properties: {n: {type: 'integer'}}, additionalProperties: false}}, run: async () => {}}]}},
    ])
    await assert.rejects(resolveStageOptions(asyncSchema, {stageOptions: {'fixer:lazy': {n: 'not a number', other: 1}}}), (error: H2KError) => {
      assert.equal(error.code, 'H2K_PLUGIN_INVALID', error.message)
      assert.ok(error.message.includes('fixer:lazy'), error.message)
      return true
    })
  })

  it('--stage-option: the key follows the last dot before "=" (stage names may hold dots); values are JSON when they parse', () => {
    const layer = parseStageOptionFlags(['fixer:my.marker.note=a=b', 'fixer:my.marker.n=7', 'fixer:my.marker.flag=true', 'fixer:my.marker.text={not json'])
    assert.deepEqual(layer.values, {'fixer:my.marker': {flag: true, n: 7, note: 'a=b', text: '{not json'}})
    assert.equal(layer.sources['fixer:my.marker.n'], '--stage-option fixer:my.marker.n')
    for (const bad of ['fixer:x', 'fixer:x=1', 'fixer.note=1', 'marker.note=1', 'fixer:X.note=1', 'fixer:x.=1']) {
      assert.throws(() => parseStageOptionFlags([bad]), (error: H2KError) => error.code === 'H2K_USAGE', bad)
    }
  })
})
