import assert from 'node:assert/strict'
import {resolve} from 'node:path'

import {createBody} from '../../src/schedule/schedule-cli.js'

describe('schedule create: the body sent to POST /api/v1/schedules', () => {
  it('the seed\'s flags make the seed\'s keys; paths become absolute; the zone is left to the daemon unless given', async () => {
    const body = await createBody({'retry-backoff': 'exponential', 'retry-max': 3, 'sweep-dir': 'exports/nightly', cron: '0 2 * * *', name: 'nightly-backup', pattern: '*.ova', window: '22:00-06:00'})
    assert.deepEqual(body, {cron: '0 2 * * *', job_template: {pattern: '*.ova', sweep_dir: resolve('exports/nightly')}, name: 'nightly-backup', retry: {backoff: 'exponential', max: 3}, window: '22:00-06:00'})
    const zoned = await createBody({'catch-up': 'all', cron: '0 2 * * *', input: '/srv/vm.ova', overlap: 'queue', tag: ['a', 'b'], timezone: 'America/Chicago', disabled: true})
    assert.deepEqual(zoned, {catch_up: 'all', cron: '0 2 * * *', enabled: false, job_template: {input: '/srv/vm.ova'}, overlap: 'queue', tags: ['a', 'b'], timezone: 'America/Chicago'})
  })

  it('refuses before sending: no cron, nothing to convert, two templates, a bad cron or zone', async () => {
    await assert.rejects(createBody({input: '/x'}), /needs --cron/)
    await assert.rejects(createBody({cron: '0 2 * * *'}), /needs something to convert/)
    await assert.rejects(createBody({cron: '0 2 * * *', input: '/x', 'job-file': '/y.yaml'}), /one of --job-file, --sweep-dir, --manifest, --input/)
    await assert.rejects(createBody({cron: '0 2 * * * *', input: '/x'}), /has 6 fields/)
    await assert.rejects(createBody({cron: '0 2 * * *', input: '/x', timezone: 'Nowhere/Else'}), /unknown time zone/)
  })
})
