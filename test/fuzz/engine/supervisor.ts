import {existsSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Worker} from 'node:worker_threads'

import {ExecSlot} from './exec-slot.js'
import type {WorkerInput, WorkerMessage} from './fuzz-worker.js'
import type {Outcome} from './target.js'

export const REPO_ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)))
const WORKER_FILE = fileURLToPath(new URL('./fuzz-worker-entry.mjs', import.meta.url))
const MAX_LENGTH = 1024 * 1024
/** Targets that parse files write each input to this worker's scratch directory: on tmpfs when there is one (2-3x the exec rate). */
const SCRATCH_PARENT = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
/** Heap a worker may use: a parser that balloons on a small input is a finding, not a reason to swap. */
const HEAP_MB = 1024

export type WorkerEnd = {kind: 'done'} | {kind: 'hang'; input: Buffer} | {kind: 'oom'; input: Buffer} | {kind: 'died'; input: Buffer; error: string}

interface WorkerRun {
  mode: WorkerInput['mode']
  targetFile: string
  inputs: Buffer[]
  timeoutMs: number
  durationMs?: number
  corpusDir?: string
  onMessage: (message: WorkerMessage) => void
}

/**
 * Run a fuzz worker (a thread, so that a synchronous endless loop can be stopped) and watch it: an input
 * that runs longer than `timeoutMs` is a hang, a worker that runs out of heap is an OOM; both end the run
 * and return the input that was executing.
 */
export async function superviseWorker(run: WorkerRun): Promise<WorkerEnd> {
  const slot = ExecSlot.create(MAX_LENGTH)
  const scratch = await mkdtemp(join(SCRATCH_PARENT, 'h2k-fuzz-'))
  const data: WorkerInput = {
    mode: run.mode,
    targetFile: run.targetFile,
    repoRoot: REPO_ROOT,
    inputs: run.inputs.map((input) => new Uint8Array(input)),
    shared: slot.shared,
    scratch,
    maxLength: MAX_LENGTH,
    durationMs: run.durationMs ?? 0,
    corpusDir: run.corpusDir ?? join(scratch, 'corpus'),
  }
  const worker = new Worker(WORKER_FILE, {workerData: data, resourceLimits: {maxOldGenerationSizeMb: HEAP_MB}})
  try {
    return await new Promise<WorkerEnd>((settle) => {
      let lastExecs = -1
      let lastChange = Date.now()
      const watch = setInterval(() => {
        const execs = slot.execs
        if (execs !== lastExecs || !slot.busy) {
          lastExecs = execs
          lastChange = Date.now()
          return
        }
        if (Date.now() - lastChange > run.timeoutMs) {
          clearInterval(watch)
          settle({kind: 'hang', input: slot.current()})
        }
      }, 100)
      worker.on('message', (message: WorkerMessage) => {
        run.onMessage(message)
        if (message.kind === 'done') {
          clearInterval(watch)
          settle({kind: 'done'})
        }
      })
      worker.on('error', (error: Error & {code?: string}) => {
        clearInterval(watch)
        const input = slot.current()
        settle(error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? {kind: 'oom', input} : {kind: 'died', input, error: error.stack ?? error.message})
      })
      worker.on('exit', (code) => {
        clearInterval(watch)
        settle({kind: 'died', input: slot.current(), error: `worker exited with code ${code}`})
      })
    })
  } finally {
    await worker.terminate()
    await rm(scratch, {recursive: true, force: true})
  }
}

/** Run each input through a target once (in a worker, with the same timeout): what happened to each. */
export async function replayInputs(targetFile: string, inputs: Buffer[], timeoutMs: number): Promise<Array<Outcome | {kind: 'hang' | 'oom' | 'died'; error?: string}>> {
  const outcomes: Array<Outcome | {kind: 'hang' | 'oom' | 'died'; error?: string}> = []
  let remaining = inputs
  // A hang or OOM ends a worker: note it for that input and go on with the rest in a new one.
  while (remaining.length > 0) {
    const batch: Outcome[] = []
    const end = await superviseWorker({
      mode: 'replay',
      targetFile,
      inputs: remaining,
      timeoutMs,
      onMessage: (message) => {
        if (message.kind === 'outcome') batch.push(message.outcome)
      },
    })
    outcomes.push(...batch)
    if (end.kind === 'done') break
    outcomes.push(end.kind === 'died' ? {kind: 'died', error: end.error} : {kind: end.kind})
    remaining = remaining.slice(batch.length + 1)
  }
  return outcomes
}
