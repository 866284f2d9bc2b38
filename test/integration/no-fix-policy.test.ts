import assert from 'node:assert/strict'
import {join} from 'node:path'

import registerCore from '../../src/hooks/register-core.js'
import {defaultJobSettings} from '../../src/stages/job-defaults.js'
import {runJob} from '../../src/stages/run-job.js'
import {StageRegistry} from '../../src/stages/stage-registry.js'
import type {PipelineStage} from '@hyper2kvm/plugin-api'
import {makePatternedRaw, sameContent} from '../helpers/patterned-image.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/** A third party's fixer that wants to run on every job: its applies() says yes whatever the job says. */
function eagerFixer(calls: string[]): PipelineStage {
  return {
    applies: () => {
      calls.push('applies')
      return true
    },
    kind: 'fixer',
    name: 'eager',
    run: async () => {
      calls.push('run')
    },
  }
}

/** --no-fix is the host's policy, not each stage's: a third-party fixer is neither asked nor run. */
describe('--no-fix (fix: false) is enforced by the host for every fixer', function () {
  this.timeout(60_000)
  let dir: string
  let cleanup: () => void
  before(() => ({cleanup, dir} = makeTempDir('h2k-nofix-')))
  after(() => cleanup())

  const registry = async (calls: string[]): Promise<StageRegistry> => {
    // The first-party raw loader through its real hook; the core converter and verifiers; the third party.
    const generic = (await import('../../plugins/generic/dist/register.js')) as {default: () => Promise<unknown>}
    return StageRegistry.fromContributions([
      {plugin: {name: 'hyper2kvm', version: '0.1.0'}, result: await registerCore()},
      {plugin: {name: '@hyper2kvm/plugin-generic', version: '0.1.0'}, result: await generic.default()},
      {plugin: {name: 'third-party-fixer', version: '1.0.0'}, result: {apiVersion: 1, stages: [eagerFixer(calls)]}},
    ])
  }

  for (const fix of [false, true]) {
    it(`fix: ${fix} — the third-party fixer is ${fix ? 'asked and run' : 'skipped without being asked'}, and the disk converts`, async () => {
      const calls: string[] = []
      const raw = makePatternedRaw(join(dir, `disk-${fix}.raw`))
      const settings = defaultJobSettings(raw, join(dir, `out-${fix}`))
      const result = await runJob({...settings, fix: {...settings.fix, enabled: fix}, name: 'vm'}, {registry: await registry(calls)})
      assert.deepEqual(calls, fix ? ['applies', 'run'] : [])
      // The report says so: skipped, or ran.
      const record = result.stages.find((s) => s.id === 'fixer:eager')
      assert.equal(record?.status, fix ? 'ok' : 'skipped', JSON.stringify(result.stages))
      assert.ok(sameContent(result.outputs[0]!.path, 'qcow2', raw, 'raw'))
    })
  }
})
