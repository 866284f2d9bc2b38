import assert from 'node:assert/strict'

import {H2KError} from '@hyper2kvm/plugin-api'
import {snakeCaseKey, snakeCaseKeys} from '@hyper2kvm/plugin-api/host'

describe('snake_case JSON keys', () => {
  const renamed: Array<[string, string]> = [
    ['durationMs', 'duration_ms'],
    ['jobId', 'job_id'],
    ['bytesOnDisk', 'bytes_on_disk'],
    ['virtioInInitramfs', 'virtio_in_initramfs'],
    ['memoryMiB', 'memory_mib'],
    ['expectedCID', 'expected_cid'],
  ]
  for (const [from, to] of renamed) it(`${from} → ${to}`, () => assert.equal(snakeCaseKey(from), to))

  it('keeps keys that are data, not camelCase identifiers: paths, file names, header names, codes, snake_case', () => {
    for (const key of ['/mnt/Data', 'vm-001.vmdk', 'My VM', 'Authorization', 'X-Api-Key', 'H2K_USAGE', 'sha256', 'output_dir', 'ok']) assert.equal(snakeCaseKey(key), key)
  })

  it('renames at every depth, changes no value, and is idempotent (a stored result read back)', () => {
    const value = {inspection: {kernels: [{hasVirtio: true, version: '6.1'}], mountpoints: {'/': '/dev/sda1', '/srv/WebData': '/dev/sdb1'}}, jobId: 'a1', notes: ['keepMe'], startedAt: new Date(0)}
    const once = snakeCaseKeys(value)
    assert.deepEqual(once, {inspection: {kernels: [{has_virtio: true, version: '6.1'}], mountpoints: {'/': '/dev/sda1', '/srv/WebData': '/dev/sdb1'}}, job_id: 'a1', notes: ['keepMe'], started_at: new Date(0)})
    assert.deepEqual(snakeCaseKeys(once), once)
  })

  it('stage options are data: their keys are the option names a plugin chose (ctl job shows a stored definition)', () => {
    const definition = {settings: {stageOptionSources: {'fixer:x.maxSize': '--stage-option fixer:x.maxSize'}, stageOptions: {'fixer:x': {maxSize: 5, nested: {keepMe: true}}}}}
    const json = snakeCaseKeys(definition)
    assert.deepEqual(json, {settings: {stage_option_sources: {'fixer:x.maxSize': '--stage-option fixer:x.maxSize'}, stage_options: {'fixer:x': {maxSize: 5, nested: {keepMe: true}}}}})
    assert.deepEqual(snakeCaseKeys(json), json)
  })

  it('an H2KError as JSON: exit_code, and its details in snake_case', () => {
    const json = new H2KError('H2K_OUTPUT_EXISTS', 'x', {details: {outputDir: '/o', path: '/o/a.qcow2'}}).toJSON()
    assert.equal(json.exit_code, 5)
    assert.deepEqual(json.details, {output_dir: '/o', path: '/o/a.qcow2'})
  })
})
