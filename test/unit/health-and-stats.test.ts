import assert from 'node:assert/strict'

import {type CurrentJob, currentJobsMap} from '../../src/daemon/daemon-stats.js'
import {healthVerdict, unreachableVerdict} from '../../src/ctl/health-verdict.js'
import {statsSummary, statusLine} from '../../src/ctl/stats-summary.js'

const thresholds = {criticalBelow: 50, warningBelow: 80}
const status = (extra: Record<string, unknown> = {}) => ({running: 0, state: 'RUNNING', warnings: [], ...extra})
const stats = (extra: Record<string, unknown> = {}) => ({current_queue_depth: 0, running_jobs: 0, state: 'RUNNING', success_rate: null, total_failed: 0, total_processed: 0, ...extra})

/** ctl health's verdict (Nagios exit codes) for each situation the seed's healthcheck distinguishes, and more. */
describe('ctl health verdicts', () => {
  for (const [name, st, sx, expected] of [
    ['nothing finished yet is healthy (the seed\'s `// 100`)', status(), stats(), 'OK'],
    ['80 % is not below 80', status(), stats({success_rate: 80, total_failed: 1, total_processed: 4}), 'OK'],
    ['79.9 % is below 80: WARNING', status(), stats({success_rate: 79.9}), 'WARNING'],
    ['50 % is not below 50: WARNING', status(), stats({success_rate: 50}), 'WARNING'],
    ['49.9 % is below 50: CRITICAL', status(), stats({success_rate: 49.9}), 'CRITICAL'],
    ['paused: WARNING', status({state: 'PAUSED'}), stats({state: 'PAUSED', success_rate: 100}), 'WARNING'],
    ['draining: WARNING', status({state: 'DRAINING'}), stats({state: 'DRAINING'}), 'WARNING'],
    ['a bookkeeping warning: WARNING', status({warnings: ['/q/.errors: a symbolic link']}), stats({success_rate: 100}), 'WARNING'],
    ['CRITICAL outranks a pause', status({state: 'PAUSED'}), stats({state: 'PAUSED', success_rate: 10}), 'CRITICAL'],
  ] as const) {
    it(name, () => {
      const v = healthVerdict(st, sx, thresholds)
      assert.equal(v.status, expected, v.message)
      assert.equal(v.exit_code, {CRITICAL: 2, OK: 0, WARNING: 1}[expected])
      assert.ok(v.message.startsWith(`${expected}: `), v.message)
      assert.equal(v.message.split('\n').length, 1)
    })
  }

  it('no daemon is CRITICAL (2), a socket that does not answer in time WARNING (1), anything else UNKNOWN (3)', () => {
    assert.deepEqual([unreachableVerdict('not-running', 'x').exit_code, unreachableVerdict('timeout', 'x').exit_code, unreachableVerdict('other', 'x').exit_code], [2, 1, 3])
  })
})

describe('stats: current_jobs and the human summary', () => {
  const job = (filename: string, jobId: string, extra: Partial<CurrentJob> = {}): CurrentJob => ({error: null, filename, jobId, nextRetryAt: null, phase: 'convert', retryCount: 0, sizeBytes: 1024 * 1024, startTime: '2026-01-17T20:30:15.000Z', status: 'processing', ...extra})

  it('is keyed by file name; two jobs of one file are keyed <file>#<job id>, so neither hides the other', () => {
    const map = currentJobsMap([job('vm-001.vmdk', 'a1'), job('batch-disk.raw', 'b1'), job('batch-disk.raw', 'b2', {retryCount: 2, status: 'retrying'})])
    assert.deepEqual(Object.keys(map), ['vm-001.vmdk', 'batch-disk.raw#b1', 'batch-disk.raw#b2'])
    assert.deepEqual(map['vm-001.vmdk'], {error: null, file_size_mb: 1, filename: 'vm-001.vmdk', job_id: 'a1', next_retry: null, phase: 'convert', retry_count: 0, start_time: '2026-01-17T20:30:15.000Z', status: 'processing'})
  })

  it('the summary escapes control characters of dropped names and says n/a before anything finished', () => {
    const lines = statsSummary({current_jobs: currentJobsMap([job('evil\n  Failed: 0.vmdk', 'e1')]), success_rate: null, total_failed: 3, uptime_hours: 12.5}, false)
    assert.ok(lines.includes('  Success Rate: n/a (nothing finished yet)'))
    assert.ok(lines.includes('  Uptime: 12.5 hours'))
    assert.equal(lines.filter((l) => /^ {2}Failed: /.test(l)).length, 1, 'a file name cannot forge a line')
    assert.ok(lines.some((l) => l.includes('evil\\n  Failed: 0.vmdk')))
    assert.equal(statusLine('RUNNING', true), 'Status: ▶️ RUNNING')
    assert.equal(statusLine('RUNNING', false), 'Status: RUNNING')
    assert.equal(statusLine('\u001b[31mX', false), 'Status: \\x1b[31mX')
  })
})
