import assert from 'node:assert/strict'
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {CASE_DIR, readInputs, SEED_DIR, targetFile, targetNames} from '../fuzz/engine/corpus-files.js'
import {replayInputs} from '../fuzz/engine/supervisor.js'

/** Generous: a case that once hung must now finish well within this, even on a loaded 2-core machine. */
const TIMEOUT_MS = 10_000

interface FuzzCase {
  description: string
  target: string
  expect: {code: string} | {accepted: true}
}

const names = await targetNames()
const subdirs = (dir: string): string[] => {
  try {
    return readdirSync(dir, {withFileTypes: true}).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort()
  } catch {
    return []
  }
}

describe('fuzz regressions: every seed and every case the fuzzer found, replayed through its target', () => {
  it('the harness tells an accepted input, a refusal, a crash, a hang and a runaway allocation apart (each ends or is stopped)', async () => {
    const selftest = fileURLToPath(new URL('../fuzz/engine/selftest-target.ts', import.meta.url))
    const outcomes = await replayInputs(selftest, ['A', 'E', 'D', 'B', 'C', 'A'].map((letter) => Buffer.from(letter)), 1500)
    assert.deepEqual(
      outcomes.map((outcome) => (outcome.kind === 'refused' ? `refused:${outcome.code}` : outcome.kind)),
      ['accepted', 'refused:SELFTEST_REFUSED', 'crash', 'hang', outcomes[4]?.kind === 'oom' ? 'oom' : 'hang', 'accepted'],
    )
    assert.match(outcomes[2]?.kind === 'crash' ? outcomes[2].error : '', /TypeError: not a documented refusal/)
  })

  it('every case folder names a known target', () => {
    for (const target of subdirs(CASE_DIR)) assert.ok(names.includes(target), `test/hostile/fuzz/${target}/ is not a fuzz target (${names.join(', ')})`)
  })

  for (const name of names) {
    describe(name, () => {
      const cases = subdirs(join(CASE_DIR, name)).map((folder) => {
        const dir = join(CASE_DIR, name, folder)
        return {dir, folder, input: readFileSync(join(dir, 'input')), spec: JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as FuzzCase}
      })
      let seeds: Array<{name: string; bytes: Buffer}> = []
      let outcomes: Awaited<ReturnType<typeof replayInputs>> = []
      // One worker per target replays its seeds and cases (a hang or crash is reported per input, and the rest go on).
      before(async () => {
        seeds = await readInputs(join(SEED_DIR, name))
        outcomes = await replayInputs(targetFile(name), [...seeds.map((seed) => seed.bytes), ...cases.map((c) => c.input)], TIMEOUT_MS)
      })

      it('every seed (a real sample) is accepted', () => {
        assert.ok(seeds.length > 0, `test/fuzz/corpus/${name}/ has no seeds`)
        seeds.forEach((seed, index) => assert.deepEqual(outcomes[index], {kind: 'accepted'}, `${name}/${seed.name}`))
      })

      cases.forEach(({folder, dir, spec}, index) => {
        it(`${folder}: ${spec.description}`, () => {
          assert.equal(spec.target, name, `${dir}/case.json names target ${spec.target}`)
          const outcome = outcomes[seeds.length + index]
          if ('code' in spec.expect) assert.deepEqual(outcome, {kind: 'refused', code: spec.expect.code})
          else assert.deepEqual(outcome, {kind: 'accepted'})
        })
      })
    })
  }
})
