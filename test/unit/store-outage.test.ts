import assert from 'node:assert/strict'

import {H2KError} from '@hyper2kvm/plugin-api'
import {StoreOutage} from '../../src/cluster/store-outage.js'

interface Logged {
  event: string
  fields: Record<string, unknown>
  level: string
  message?: string
}

describe('store outage: what a timer path logs when the store keeps failing', () => {
  let logged: Logged[]
  let outage: StoreOutage
  let now: number
  const realNow = Date.now
  beforeEach(() => {
    logged = []
    now = 1_000_000
    Date.now = () => now
    outage = new StoreOutage((level, event, fields = {}, message) => logged.push({event, fields, level, message}))
  })
  afterEach(() => {
    Date.now = realNow
  })
  const failing = (message: string) => () => {
    throw new H2KError('H2K_STORE_FAILED', message)
  }

  it('an outage is logged once when it begins and once when the store answers', () => {
    for (let tick = 0; tick < 5; tick++) {
      const value = outage.run('pump', () => {
        throw new H2KError('H2K_STORE_UNAVAILABLE', 'no answer')
      })
      assert.equal(value, undefined)
    }
    assert.equal(outage.down, true)
    assert.equal(outage.run('pump', () => 7), 7)
    assert.equal(outage.down, false)
    assert.deepEqual(logged.map((l) => l.event), ['store:unavailable', 'store:available'])
  })

  it('the same other error on every tick is logged once a minute with how often it repeated, a new one at once, and again after a success', () => {
    for (let tick = 0; tick <= 600; tick++) {
      outage.run('claim', failing('constraint failed'))
      now += 100
    }
    const claims = logged.filter((l) => l.event === 'claim:error')
    assert.deepEqual(claims.map((l) => l.fields.repeated), [undefined, 599])
    assert.equal(claims[0]!.message, claims[1]!.message)
    assert.match(claims[0]!.message!, /constraint failed/)
    outage.run('claim', failing('another thing'))
    outage.run('intake', failing('constraint failed'))
    assert.deepEqual(logged.slice(-2).map((l) => [l.event, l.message?.includes('another thing') ?? false]), [['claim:error', true], ['intake:error', false]])
    outage.run('claim', () => 1)
    outage.run('claim', failing('another thing'))
    assert.deepEqual(logged.at(-1)!.fields, {}, 'after a success, the error is new again')
    assert.equal(logged.filter((l) => l.event === 'claim:error').length, 4)
  })
})
