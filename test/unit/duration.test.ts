import assert from 'node:assert/strict'

import {cutoffBefore, parseDuration} from '../../src/daemon/duration.js'
import {H2KError} from '@hyper2kvm/plugin-api'

describe('parseDuration', () => {
  it('reads seconds, minutes, hours, days and weeks', () => {
    assert.equal(parseDuration('45s'), 45_000)
    assert.equal(parseDuration('90m'), 90 * 60_000)
    assert.equal(parseDuration('12h'), 12 * 3_600_000)
    assert.equal(parseDuration('30d'), 30 * 86_400_000)
    assert.equal(parseDuration('2w'), 14 * 86_400_000)
  })

  it('accepts decimals, upper case and surrounding blanks', () => {
    assert.equal(parseDuration('1.5d'), 36 * 3_600_000)
    assert.equal(parseDuration(' 30D '), 30 * 86_400_000)
    assert.equal(parseDuration('10 m'), 600_000)
  })

  for (const bad of ['', '30', 'd', '30x', '-5d', '0d', '30 days', '1d12h', '1e3s', 'NaNd']) {
    it(`refuses ${JSON.stringify(bad)} with H2K_USAGE and an example`, () => {
      assert.throws(
        () => parseDuration(bad, '--older-than'),
        (error: H2KError) =>
          error instanceof H2KError &&
          error.code === 'H2K_USAGE' &&
          error.exitCode === 2 &&
          error.message.startsWith(`--older-than ${JSON.stringify(bad)} is not a duration`) &&
          /--older-than 30d/.test(error.suggestions[0] ?? ''),
      )
    })
  }

  it('computes the cutoff instant', () => {
    assert.equal(cutoffBefore(parseDuration('1d'), Date.UTC(2026, 0, 2)).toISOString(), '2026-01-01T00:00:00.000Z')
  })
})
