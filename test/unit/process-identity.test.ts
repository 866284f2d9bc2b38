import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'

import {parseStat, processStat} from '../../src/exec/process-identity.js'

describe('process identity from /proc/PID/stat', () => {
  it('counts fields after the last parenthesis: a command name may hold spaces and ") "', () => {
    const fields = ['S', '4321', ...Array.from({length: 17}, (_, i) => String(i)), '987654', '0']
    const stat = parseStat(42, `42 (evil) 1 2 (x) ${fields.join(' ')}\n`)
    assert.deepEqual(stat, {pid: 42, ppid: 4321, startTime: '987654', state: 'S'})
  })

  it('refuses what is not a stat line', () => {
    assert.equal(parseStat(1, 'garbage'), undefined)
    assert.equal(parseStat(1, '1 (x) S'), undefined)
  })

  it('reads a real process: its parent, and a start time that differs from a later process', async () => {
    const first = spawn('sleep', ['30'])
    const second = spawn('sleep', ['30'])
    try {
      const a = await processStat(first.pid!)
      const b = await processStat(second.pid!)
      assert.equal(a?.ppid, process.pid)
      assert.match(a!.startTime, /^\d+$/)
      assert.ok(Number(b!.startTime) >= Number(a!.startTime))
      assert.equal(await processStat(2 ** 22 + 1), undefined, 'no such pid')
    } finally {
      first.kill('SIGKILL')
      second.kill('SIGKILL')
    }
  })
})
