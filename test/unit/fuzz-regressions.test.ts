import assert from 'node:assert/strict'
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

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
  it('every case folder names a known target', () => {
    for (const target of subdirs(CASE_DIR)) assert.ok(names.includes(target), `test/hostile/fuzz/${target}/ is not a fuzz target (${names.join(', ')})`)
  })

  for (const name of names) {
    it(`${name}: every seed (a real sample) is accepted`, async () => {
      const seeds = await readInputs(join(SEED_DIR, name))
      assert.ok(seeds.length > 0, `test/fuzz/corpus/${name}/ has no seeds`)
      const outcomes = await replayInputs(targetFile(name), seeds.map((seed) => seed.bytes), TIMEOUT_MS)
      seeds.forEach((seed, index) => {
        const outcome = outcomes[index]
        assert.deepEqual(outcome, {kind: 'accepted'}, `${name}/${seed.name}`)
      })
    })

    for (const folder of subdirs(join(CASE_DIR, name))) {
      const dir = join(CASE_DIR, name, folder)
      const spec = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as FuzzCase
      it(`${name}/${folder}: ${spec.description}`, async () => {
        assert.equal(spec.target, name, `${dir}/case.json names target ${spec.target}`)
        const [outcome] = await replayInputs(targetFile(name), [readFileSync(join(dir, 'input'))], TIMEOUT_MS)
        if ('code' in spec.expect) assert.deepEqual(outcome, {kind: 'refused', code: spec.expect.code})
        else assert.deepEqual(outcome, {kind: 'accepted'})
      })
    }
  }
})
