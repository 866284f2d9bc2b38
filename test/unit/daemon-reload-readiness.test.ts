import assert from 'node:assert/strict'
import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {loadDaemonConfig} from '../../src/daemon/config.js'
import {readinessChecks} from '../../src/daemon/readiness.js'
import {planReload} from '../../src/daemon/reload-config.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('daemon pieces without the daemon: SIGHUP reload plan, readiness checks', () => {
  let dir: string
  let cleanup: () => void
  beforeEach(() => ({cleanup, dir} = makeTempDir('h2k-reload-')))
  afterEach(() => cleanup())

  // An explicit file, so no configuration found on the host (./hyper2kvm.yaml, /etc/hyper2kvm/…) takes part.
  const load = (flags: Record<string, unknown>) => {
    writeFileSync(join(dir, 'daemon.yaml'), 'watch_dir: queue\noutput_dir: out\n')
    return loadDaemonConfig({config: join(dir, 'daemon.yaml'), ...flags})
  }

  it('applies live keys at once and names the ones that need a restart, keeping their running values', async () => {
    const current = await load({'max-concurrent-jobs': 2})
    const next = await load({'log-level': 'debug', 'max-concurrent-jobs': 4, 'output-dir': join(dir, 'elsewhere')})
    const plan = planReload(current, {...next, metrics: {...next.metrics, port: 9999}})
    assert.equal(plan.updated.maxConcurrentJobs, 4)
    assert.equal(plan.updated.logLevel, 'debug')
    assert.deepEqual(plan.changed, ['maxConcurrentJobs: 2 → 4', 'logLevel: "info" → "debug"'])
    assert.deepEqual(plan.needsRestart, ['outputDir', 'metrics'])
    assert.equal(plan.updated.outputDir, current.outputDir, 'a restart key keeps its running value')
    assert.equal(plan.updated.metrics.port, 9090)
    assert.deepEqual(planReload(current, current), {changed: [], needsRestart: [], updated: current})
    const moved = planReload(current, {...current, stabilityIntervalMs: 5000, umask: 0o022, workDir: join(dir, 'work')})
    assert.deepEqual(moved.needsRestart, ['workDir', 'umask', 'stabilityIntervalMs'], 'applied at start only: reported, not silently dropped')
    assert.deepEqual(moved.changed, [])
  })

  it('readiness: a store that throws, a refused directory, a missing inbox, a paused daemon each fail their check', () => {
    const inbox = join(dir, 'inbox')
    mkdirSync(inbox)
    const ok = readinessChecks({bookkeepingProblems: () => [], inbox, pingStore: () => {}, state: 'RUNNING'})
    assert.deepEqual(ok, [{name: 'store', ok: true}, {name: 'directories', ok: true}, {name: 'accepting', ok: true}])
    rmSync(inbox, {recursive: true})
    const bad = readinessChecks({
      bookkeepingProblems: () => [{dir: '/q/.errors', problem: 'a symlink'}],
      inbox,
      pingStore: () => {
        throw new Error('SQLITE_READONLY: attempt to write a readonly database')
      },
      state: 'PAUSED',
    })
    assert.deepEqual(bad.map((c) => [c.name, c.ok]), [['store', false], ['directories', false], ['accepting', false]])
    assert.match(bad[0]!.detail!, /readonly/)
    assert.equal(bad[1]!.detail, '/q/.errors: a symlink; the inbox is missing')
    assert.equal(bad[2]!.detail, 'paused')
  })
})
