import {createHash} from 'node:crypto'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {parentPort, workerData} from 'node:worker_threads'

import {BlockCoverage} from './block-coverage.js'
import {ExecSlot} from './exec-slot.js'
import {mutate} from './mutate.js'
import {random} from './random.js'
import {type FuzzTarget, runOne} from './target.js'

/** What the supervisor hands a worker. */
export interface WorkerInput {
  mode: 'fuzz' | 'replay'
  targetFile: string
  repoRoot: string
  inputs: Uint8Array[]
  shared: SharedArrayBuffer
  scratch: string
  maxLength: number
  /** fuzz mode: stop after this many milliseconds. */
  durationMs: number
  /** fuzz mode: where inputs that found new coverage are kept. */
  corpusDir: string
}

export type WorkerMessage =
  | {kind: 'stats'; execs: number; corpus: number; features: number}
  | {kind: 'crash'; input: Uint8Array; error: string}
  | {kind: 'outcome'; index: number; outcome: Awaited<ReturnType<typeof runOne>>}
  | {kind: 'done'; execs: number; corpus: number; features: number}

const job = workerData as WorkerInput
const port = parentPort
if (!port) throw new Error('fuzz-worker runs in a worker thread')
const send = (message: WorkerMessage): void => port.postMessage(message)

const loaded = (await import(pathToFileURL(job.targetFile).href)) as {target: FuzzTarget}
const target = loaded.target
const slot = new ExecSlot(job.shared)
const inputs = job.inputs.map((bytes) => Buffer.from(bytes))

async function execute(data: Buffer): Promise<Awaited<ReturnType<typeof runOne>>> {
  slot.begin(data)
  try {
    return await runOne(target, data, job.scratch)
  } finally {
    slot.end()
  }
}

if (job.mode === 'replay') {
  for (const [index, data] of inputs.entries()) send({kind: 'outcome', index, outcome: await execute(data)})
  send({kind: 'done', execs: slot.execs, corpus: inputs.length, features: 0})
} else {
  const rootUrl = pathToFileURL(job.repoRoot).href + '/'
  const covered = (target.alsoCover ?? []).map((name) => `${rootUrl}node_modules/${name}/`)
  const coverage = new BlockCoverage(
    (url) => url.startsWith(rootUrl) && ((!url.includes('/node_modules/') && !url.startsWith(`${rootUrl}test/`)) || covered.some((prefix) => url.startsWith(prefix))),
  )
  const dictionary = (target.dictionary ?? []).map((word) => (typeof word === 'string' ? Buffer.from(word, 'latin1') : word))
  const maxLength = Math.min(target.maxLength ?? job.maxLength, job.maxLength)
  await mkdir(job.corpusDir, {recursive: true})
  const corpus: Buffer[] = []
  const crashes = new Set<string>()

  const consider = async (data: Buffer, always: boolean): Promise<void> => {
    const outcome = await execute(data)
    const fresh = coverage.takeNew()
    if (outcome.kind === 'crash') {
      // One report per distinct failure site: the error's class and its first frames (messages vary with the input).
      const [first = '', ...frames] = outcome.error.split('\n')
      const signature = [first.split(':')[0], ...frames.slice(0, 3)].join('\n')
      if (!crashes.has(signature)) {
        crashes.add(signature)
        send({kind: 'crash', input: new Uint8Array(data), error: outcome.error})
      }
      return
    }
    if (fresh > 0 || always) {
      corpus.push(data)
      if (!always) await writeFile(join(job.corpusDir, createHash('sha1').update(data).digest('hex')), data)
    }
  }

  for (const seed of inputs) await consider(seed.subarray(0, maxLength), true)
  if (corpus.length === 0) corpus.push(Buffer.alloc(0))
  const context = {maxLength, dictionary, other: () => corpus[Math.floor(random() * corpus.length)] as Buffer}
  const deadline = Date.now() + job.durationMs
  let nextStats = Date.now() + 1000
  while (Date.now() < deadline) {
    // Favour the newest finds a little: they sit at the coverage frontier.
    const index = random() < 0.3 ? corpus.length - 1 - Math.floor(random() * Math.min(8, corpus.length)) : Math.floor(random() * corpus.length)
    await consider(mutate(corpus[index] as Buffer, context), false)
    if (Date.now() >= nextStats) {
      send({kind: 'stats', execs: slot.execs, corpus: corpus.length, features: coverage.size})
      nextStats = Date.now() + 1000
    }
  }
  coverage.close()
  send({kind: 'done', execs: slot.execs, corpus: corpus.length, features: coverage.size})
}
