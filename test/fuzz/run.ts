/**
 * `make fuzz` / `make fuzz-ci`: run every fuzz target (or those named) for FUZZ_SECONDS each, starting from
 * its seed corpus (test/fuzz/corpus/<target>/) plus what earlier runs kept (.cache/fuzz/<target>/corpus/).
 * A crash (an exception that is not the parser's documented refusal), a hang (one input running longer
 * than FUZZ_TIMEOUT_MS) or an OOM is saved under .cache/fuzz/<target>/findings/ and fails the run.
 *
 *   tsx test/fuzz/run.ts [target…]     env: FUZZ_SECONDS (60), FUZZ_TIMEOUT_MS (5000), FUZZ_SEED (random, printed)
 */
import {createHash} from 'node:crypto'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {readInputs, SEED_DIR, targetFile, targetNames, WORK_DIR} from './engine/corpus-files.js'
import {FUZZ_SEED} from './engine/random.js'
import {superviseWorker} from './engine/supervisor.js'

// Every worker (and a restarted one) draws from this seed: a run is repeatable with the printed FUZZ_SEED.
process.env.FUZZ_SEED = String(FUZZ_SEED)
const seconds = Number(process.env.FUZZ_SECONDS ?? '60')
const timeoutMs = Number(process.env.FUZZ_TIMEOUT_MS ?? '5000')
if (!(seconds > 0) || !(timeoutMs > 0)) throw new Error('FUZZ_SECONDS and FUZZ_TIMEOUT_MS must be positive numbers')

const all = await targetNames()
const wanted = process.argv.slice(2)
const unknown = wanted.filter((name) => !all.includes(name))
if (unknown.length > 0) throw new Error(`unknown fuzz target(s): ${unknown.join(', ')}; known: ${all.join(', ')}`)
const targets = wanted.length > 0 ? wanted : all

async function saveFinding(target: string, kind: string, input: Buffer, detail: string): Promise<string> {
  const dir = join(WORK_DIR, target, 'findings')
  await mkdir(dir, {recursive: true})
  const file = join(dir, `${kind}-${createHash('sha1').update(input).digest('hex')}`)
  await writeFile(file, input)
  await writeFile(`${file}.txt`, `${detail}\n`)
  return file
}

let findings = 0
const started = Date.now()
/** A hang or OOM ends a worker; the run goes on in a new one (from the corpus kept so far) while time remains, up to this many times. */
const MAX_RESTARTS = 10

for (const name of targets) {
  const corpusDir = join(WORK_DIR, name, 'corpus')
  const t0 = Date.now()
  const deadline = t0 + seconds * 1000
  let total = {execs: 0, corpus: 0, features: 0}
  let lastPrint = 0
  const line = (tag: string): string => {
    const elapsed = (Date.now() - t0) / 1000
    return `[${name}] ${tag} #${total.execs} cov: ${total.features} corp: ${total.corpus} exec/s: ${Math.round(total.execs / Math.max(elapsed, 0.001))} (${elapsed.toFixed(0)} s)`
  }
  for (let restarts = 0; restarts <= MAX_RESTARTS && Date.now() < deadline; restarts++) {
    const seeds = [...(await readInputs(join(SEED_DIR, name))), ...(await readInputs(corpusDir))].map((file) => file.bytes)
    if (restarts === 0) console.log(`[${name}] ${seeds.length} seed input(s), ${seconds} s, per-input timeout ${timeoutMs} ms, FUZZ_SEED=${FUZZ_SEED}`)
    const before = total.execs
    const pending: Array<Promise<unknown>> = []
    const end = await superviseWorker({
      mode: 'fuzz',
      targetFile: targetFile(name),
      inputs: seeds,
      timeoutMs,
      durationMs: deadline - Date.now(),
      corpusDir,
      onMessage: (message) => {
        if (message.kind === 'stats' || message.kind === 'done') total = {...message, execs: before + message.execs}
        if (message.kind === 'stats' && Date.now() - lastPrint >= 10_000) {
          lastPrint = Date.now()
          console.log(line('pulse'))
        }
        if (message.kind === 'crash') {
          findings++
          pending.push(
            saveFinding(name, 'crash', Buffer.from(message.input), message.error).then((file) => console.log(`[${name}] CRASH saved to ${file}\n${message.error}`)),
          )
        }
      },
    })
    await Promise.all(pending)
    if (end.kind === 'done') break
    findings++
    const file = await saveFinding(name, end.kind, end.input, end.kind === 'died' ? end.error : `${end.kind} (per-input timeout ${timeoutMs} ms; heap limit)`)
    console.log(`[${name}] ${end.kind.toUpperCase()} saved to ${file}`)
  }
  console.log(line('done'))
}
console.log(`fuzz: ${targets.length} target(s) in ${((Date.now() - started) / 1000).toFixed(0)} s, ${findings} finding(s)${findings > 0 ? ` under ${WORK_DIR}` : ''}`)
process.exitCode = findings > 0 ? 1 : 0
