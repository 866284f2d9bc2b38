import assert from 'node:assert/strict'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expandTemplate} from '../../src/schedule/job-template.js'
import {patternProblem, wildcardMatch} from '../../src/schedule/wildcard-match.js'
import {makeTempDir} from '../helpers/temp-dir.js'

describe('sweep patterns: a linear wildcard matcher, bounded patterns', () => {
  const cases: Array<[string, string, boolean]> = [
    ['*.raw', 'web01.raw', true],
    ['web??.vmdk', 'web01.vmdk', true],
    ['web??.vmdk', 'web1.vmdk', false],
    ['*', '', true],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXbYY', false],
    ['*.*', 'noext', false],
    ['[a].raw', '[a].raw', true],
    ['.*', 'x.raw', false],
  ]
  for (const [pattern, name, expected] of cases) {
    it(`${pattern} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(name)}`, () => assert.equal(wildcardMatch(pattern, name), expected))
  }

  it('the reviewer\'s pathological pattern over a 200-character name answers in milliseconds', () => {
    const started = performance.now()
    assert.equal(wildcardMatch(`${'*a'.repeat(12)}*X`, `${'a'.repeat(200)}.raw`), false)
    assert.ok(performance.now() - started < 100)
  })

  it('expandTemplate with that pattern says "no disk file matching" within 100 ms', async () => {
    const temp = makeTempDir('h2k-wild-')
    try {
      const dir = join(temp.dir, 'sw')
      mkdirSync(dir)
      writeFileSync(join(dir, `${'a'.repeat(200)}.raw`), 'x')
      const started = performance.now()
      await assert.rejects(expandTemplate({pattern: `${'*a'.repeat(7)}*X`, sweep_dir: dir}, {allowedInputDirs: [temp.dir], source: 'api'}), /holds no disk file matching/)
      assert.ok(performance.now() - started < 100, `took ${performance.now() - started} ms`)
    } finally {
      temp.cleanup()
    }
  })

  it('patterns are bounded in length and stars', () => {
    assert.equal(patternProblem('*.raw'), undefined)
    assert.match(patternProblem('a/b') ?? '', /without a \//)
    assert.match(patternProblem('x'.repeat(129)) ?? '', /at most 128/)
    assert.match(patternProblem('*a'.repeat(9)) ?? '', /at most 8/)
  })
})
