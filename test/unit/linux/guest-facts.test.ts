import assert from 'node:assert/strict'

import {compareVersions, parseHash} from '../../../plugins/linux/src/guest-facts.js'

describe('guest facts parsing', () => {
  it('sorts kernel versions numerically', () => {
    const versions = ['5.14.0-70.13.1.el9_0.x86_64', '5.14.0-362.8.1.el9_3.x86_64', '4.18.0-80.el8.x86_64', '6.1.0-9-amd64', '6.1.0-50-amd64']
    assert.deepEqual([...versions].sort(compareVersions), ['4.18.0-80.el8.x86_64', '5.14.0-70.13.1.el9_0.x86_64', '5.14.0-362.8.1.el9_3.x86_64', '6.1.0-9-amd64', '6.1.0-50-amd64'])
  })

  it('reads guestfish hashes (blkid, inspect-get-mountpoints)', () => {
    assert.deepEqual(parseHash('/: /dev/sda1\n/boot: /dev/sda2\n'), {'/': '/dev/sda1', '/boot': '/dev/sda2'})
    assert.equal(parseHash('UUID: f27f\nPART_ENTRY_UUID: 66d7ad62-01\n').PART_ENTRY_UUID, '66d7ad62-01')
  })
})
