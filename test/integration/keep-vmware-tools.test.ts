import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {settingsFromFlags} from '../../src/job-flags.js'
import {loadConfig} from '../../src/jobs/config.js'
import {loadJobPlan} from '../../src/jobs/job-plan.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

/**
 * --keep-vmware-tools / keep_vmware_tools reaches FixSettings.keepVmwareTools from every place a job's
 * settings come from (flag, job file, batch entry, manifest, configuration, environment), and the CLI
 * validates the key like any other: a wrong type is refused before anything runs.
 */
describe('--keep-vmware-tools and the job key keep_vmware_tools', () => {
  let dir: string
  let cleanup: () => void
  before(() => ({cleanup, dir} = makeTempDir('h2k-keep-tools-')))
  after(() => cleanup())

  it('defaults to false (the fixer runs) and the flag sets it', () => {
    assert.equal(settingsFromFlags('disk.vmdk', {}).fix.keepVmwareTools, false)
    assert.equal(settingsFromFlags('disk.vmdk', {'keep-vmware-tools': true}).fix.keepVmwareTools, true)
  })

  it('job files, batch entries and manifests map onto it', async () => {
    const job = join(dir, 'job.yaml')
    writeFileSync(job, 'input: disk.vmdk\nkeep_vmware_tools: true\n')
    assert.equal((await loadJobPlan(job)).jobs[0]!.settings.fix.keepVmwareTools, true)

    const batch = join(dir, 'batch.yaml')
    writeFileSync(batch, 'keep_vmware_tools: true\njobs:\n  - input: a.vmdk\n  - input: b.vmdk\n    keep_vmware_tools: false\n')
    assert.deepEqual((await loadJobPlan(batch)).jobs.map((j) => j.settings.fix.keepVmwareTools), [true, false])

    const manifest = join(dir, 'vm.json')
    writeFileSync(manifest, JSON.stringify({pipeline: {fix: {vmware_tools: {enabled: false}}, load: {source_path: 'disk.vmdk'}}, version: '1.0'}))
    assert.equal((await loadJobPlan(manifest)).jobs[0]!.settings.fix.keepVmwareTools, true)
    writeFileSync(manifest, JSON.stringify({pipeline: {load: {source_path: 'disk.vmdk'}}, version: '1.0'}))
    assert.equal((await loadJobPlan(manifest)).jobs[0]!.settings.fix.keepVmwareTools, false)
  })

  it('a configuration file and HYPER2KVM_KEEP_VMWARE_TOOLS set the default, each with its source', async () => {
    writeFileSync(join(dir, 'hyper2kvm.yaml'), 'keep_vmware_tools: true\n')
    const config = await loadConfig({cwd: dir, env: {}, home: dir})
    assert.deepEqual(config.settings.keep_vmware_tools, {source: join(dir, 'hyper2kvm.yaml'), value: true})
    assert.equal(config.flags['keep-vmware-tools'], true)
    const env = await loadConfig({cwd: dir, env: {HYPER2KVM_KEEP_VMWARE_TOOLS: 'no'}, home: dir})
    assert.deepEqual(env.settings.keep_vmware_tools, {source: 'env HYPER2KVM_KEEP_VMWARE_TOOLS', value: false})
  })

  it('validate accepts it in job files, manifests and daemon configs, and refuses a non-boolean with file:line:column', async () => {
    const good = join(dir, 'good.yaml')
    writeFileSync(good, 'input: disk.vmdk\nkeep_vmware_tools: true\n')
    const accepted = await runCli(['validate', good, '--json'])
    assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr)
    const daemon = join(dir, 'daemon.yaml')
    writeFileSync(daemon, `command: daemon\nwatch_dir: ${join(dir, 'in')}\noutput_dir: ${join(dir, 'out')}\nkeep_vmware_tools: true\n`)
    const daemonAccepted = await runCli(['validate', daemon, '--json'])
    assert.equal(daemonAccepted.code, 0, daemonAccepted.stdout + daemonAccepted.stderr)

    const bad = join(dir, 'bad.yaml')
    writeFileSync(bad, 'input: disk.vmdk\nkeep_vmware_tools: "yes"\n')
    const refused = await runCli(['validate', bad, '--json'])
    assert.equal(refused.code, 2)
    assert.equal(refused.json.error.code, 'H2K_JOB_INVALID')
    assert.match(refused.json.error.message, /bad\.yaml:2:\d+: keep_vmware_tools/)
    const manifest = join(dir, 'bad-manifest.json')
    writeFileSync(manifest, JSON.stringify({pipeline: {fix: {vmware_tools: {keep: true}}, load: {source_path: 'disk.vmdk'}}, version: '1.0'}))
    const manifestRefused = await runCli(['validate', manifest, '--json'])
    assert.equal(manifestRefused.code, 2)
    assert.equal(manifestRefused.json.error.code, 'H2K_JOB_INVALID')
  })

  it('convert --help documents the flag', async () => {
    const help = await runCli(['convert', '--help'])
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.stdout, /--keep-vmware-tools\s+Leave VMware Tools as they are/)
  })
})
