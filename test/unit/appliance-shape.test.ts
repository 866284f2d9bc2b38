import assert from 'node:assert/strict'

import {applianceShape} from '../../src/guest/appliance-shape.js'

describe('libguestfs appliance shape', () => {
  it('runs one vCPU under TCG and two under KVM, with the same memory', () => {
    assert.equal(applianceShape('tcg', {}).cpus, 1)
    assert.equal(applianceShape('kvm', {}).cpus, 2)
    assert.equal(applianceShape('tcg', {}).memoryMiB, applianceShape('kvm', {}).memoryMiB)
  })

  it('turns the appliance kernel\'s mitigations off and keeps a LIBGUESTFS_APPEND the user set, after ours', () => {
    assert.equal(applianceShape('tcg', {}).append, 'mitigations=off')
    assert.equal(applianceShape('kvm', {LIBGUESTFS_APPEND: ' console=ttyS1 '}).append, 'mitigations=off console=ttyS1')
  })
})
