import assert from 'node:assert/strict'

import type {RetryPolicy} from '../../src/daemon/config.js'
import {decideRetry, retryable, retryDelayMs} from '../../src/daemon/retry-decision.js'
import {resolveDependencies} from '../../src/daemon/resolve-dependencies.js'

const policy = (over: Partial<RetryPolicy> = {}): RetryPolicy => ({backoffMultiplier: 2, enabled: true, jitter: 'full', maxDelay: 3600, maxRetries: 3, noRetryOn: [], retryDelay: 10, retryOn: [], ...over})

describe('retry decision: full jitter, cap, retry_on / no_retry_on, failed vs dead', () => {
  it('full jitter draws uniformly in [0, min(max_delay, retry_delay x multiplier^(n-1))]', () => {
    // random() = 1 gives the cap itself, 0 gives 0, 0.5 half of it.
    assert.deepEqual([1, 2, 3, 4].map((n) => retryDelayMs(n, policy(), undefined, () => 1)), [10_000, 20_000, 40_000, 80_000])
    assert.equal(retryDelayMs(3, policy(), undefined, () => 0), 0)
    assert.equal(retryDelayMs(3, policy(), undefined, () => 0.5), 20_000)
    // The cap: 10 x 2^9 = 5120 s > max_delay 600 s.
    assert.equal(retryDelayMs(10, policy({maxDelay: 600}), undefined, () => 1), 600_000)
    assert.equal(retryDelayMs(10, policy({maxDelay: 600}), undefined, () => 0.25), 150_000)
  })

  it('jitter none is exactly the capped backoff; a job backoff of fixed or none overrides the exponential one', () => {
    const exact = policy({jitter: 'none'})
    assert.equal(retryDelayMs(3, exact, undefined, () => 0), 40_000)
    assert.equal(retryDelayMs(3, exact, {backoff: 'fixed'}, () => 0), 10_000)
    assert.equal(retryDelayMs(3, exact, {backoff: 'none'}, () => 0.7), 0)
  })

  it('retryable iff in retry_on, or not permanent and not in no_retry_on; a job\'s lists replace the daemon\'s', () => {
    const daemon = policy({noRetryOn: ['H2K_NO_SPACE'], retryOn: ['H2K_INPUT_CORRUPT']})
    assert.equal(retryable('H2K_TOOL_FAILED', false, daemon), true)
    assert.equal(retryable('H2K_NO_SPACE', false, daemon), false)
    assert.equal(retryable('H2K_INPUT_CORRUPT', true, daemon), true)
    assert.equal(retryable('H2K_INPUT_UNRECOGNIZED', true, daemon), false)
    assert.equal(retryable('H2K_INPUT_CORRUPT', true, daemon, {retryOn: []}), false)
    assert.equal(retryable('H2K_NO_SPACE', false, daemon, {noRetryOn: []}), true)
  })

  it('a retryable failure retries until max_retries, then is dead; permanent or disabled is failed', () => {
    const daemon = policy({maxRetries: 2})
    const half = () => 0.5
    assert.deepEqual(decideRetry(1, 'H2K_TOOL_FAILED', false, daemon, undefined, half), {action: 'retry', delayMs: 5000, maxRetries: 2})
    assert.deepEqual(decideRetry(2, 'H2K_TOOL_FAILED', false, daemon, undefined, half), {action: 'retry', delayMs: 10_000, maxRetries: 2})
    assert.equal(decideRetry(3, 'H2K_TOOL_FAILED', false, daemon, undefined, half).action, 'dead')
    assert.equal(decideRetry(1, 'H2K_INPUT_UNRECOGNIZED', true, daemon).action, 'failed')
    assert.equal(decideRetry(1, 'H2K_TOOL_FAILED', false, policy({enabled: false})).action, 'failed')
    // A job's max_retries overrides the daemon's (and enables retries for it).
    assert.equal(decideRetry(1, 'H2K_TOOL_FAILED', false, policy({enabled: false}), {maxRetries: 1}, half).action, 'retry')
    assert.equal(decideRetry(1, 'H2K_TOOL_FAILED', false, daemon, {maxRetries: 0}).action, 'failed')
    assert.equal(decideRetry(2, 'H2K_INPUT_CORRUPT', true, policy({maxRetries: 1, retryOn: ['H2K_INPUT_CORRUPT']})).action, 'dead')
  })
})

describe('depends_on resolution', () => {
  const node = (id: string, name: string, dependsOn?: string[]) => ({at: `jobs[${id}]`, id, name, ...(dependsOn ? {dependsOn} : {})})
  const none = () => undefined

  it('names of the batch first, then ids of jobs in the store; parents come before children in the order', () => {
    const {edges, order} = resolveDependencies([node('3', 'app', ['db', 'old-id']), node('1', 'db'), node('2', 'web', ['app'])], (ref) => (ref === 'old-id' ? 'old-id' : undefined), 'the request body')
    assert.deepEqual(edges.get('3'), ['1', 'old-id'])
    assert.deepEqual(edges.get('2'), ['3'])
    assert.deepEqual(order.map((n) => n.name), ['db', 'app', 'web'])
  })

  it('an unknown name is refused with where it is; a cycle is refused naming it', () => {
    assert.throws(() => resolveDependencies([node('1', 'a', ['nope'])], none, 'x'), (e: {code?: string; message: string}) => e.code === 'H2K_JOB_INVALID' && /jobs\[1\]\.depends_on\[0\]: unknown job "nope"/.test(e.message))
    assert.throws(
      () => resolveDependencies([node('1', 'a', ['c']), node('2', 'b', ['a']), node('3', 'c', ['b']), node('4', 'd')], none, 'x'),
      (e: {code?: string; message: string}) => e.code === 'H2K_JOB_INVALID' && /cycle: "a" → "c" → "b" → "a"/.test(e.message),
    )
    assert.throws(() => resolveDependencies([node('1', 'self', ['self'])], none, 'x'), /cycle: "self" → "self"/)
  })
})
