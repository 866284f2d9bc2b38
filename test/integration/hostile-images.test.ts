/**
 * The hostile image corpus (test/hostile/images/<case>/): images that try to make qemu open a file the
 * loader did not choose. Each case is built by its build.ts next to a marker file outside the input, and
 * run through the real CLI (`convert --json`, and `batch` with `restrict_inputs_to: .` where case.json
 * says so). Whatever happens, the marker's content reaches no output, report or message, no `.part` or
 * work directory is left, and the source files are unchanged.
 */
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync} from 'node:fs'
import {randomBytes} from 'node:crypto'
import {basename, dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

import {jobs, killAll, type RunningDaemon, startDaemon, until} from '../helpers/daemon-process.js'
import type {BuiltCase} from '../helpers/hostile-image-craft.js'
import {runCli, sha256} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

interface CaseSpec {
  description: string
  finding: number
  expect: {code?: string; converts?: boolean}
  /** Also run it through `batch` with a job file that restricts inputs to its own folder. */
  batch?: boolean
  /** Also drop it into a daemon's watch directory. */
  daemon?: boolean
  /** Run the CLI in the marker's or the input's folder (qemu resolves some relative names against its working directory). */
  cwd?: 'marker' | 'input'
}

interface Case {
  name: string
  spec: CaseSpec
  build: (dir: string, marker: string) => Promise<BuiltCase>
}

const CORPUS = fileURLToPath(new URL('../hostile/images/', import.meta.url))

async function loadCases(): Promise<Case[]> {
  const cases: Case[] = []
  for (const name of readdirSync(CORPUS).sort()) {
    const folder = join(CORPUS, name)
    if (!statSync(folder).isDirectory()) continue
    const spec = JSON.parse(readFileSync(join(folder, 'case.json'), 'utf8')) as CaseSpec
    const module = (await import(join(folder, 'build.ts'))) as {build: Case['build']}
    cases.push({build: module.build, name, spec})
  }
  return cases
}

/** Every regular file under `dir` (hidden ones included), skipping `skip`. */
/** Tolerant of a daemon still settling: a claim directory removed or a temporary file renamed mid-walk is skipped. */
function filesUnder(dir: string, skip: string[] = []): string[] {
  let entries: string[]
  try {
    entries = readdirSync(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  return entries.flatMap((entry) => {
    const path = join(dir, entry)
    if (skip.includes(path)) return []
    const info = lstatSync(path, {throwIfNoEntry: false})
    if (info?.isDirectory()) return filesUnder(path, skip)
    return info?.isFile() ? [path] : []
  })
}

/** Files that hold the marker's content (the first 24 bytes are random enough to be unmistakable). */
function holdersOf(marker: string, files: string[]): string[] {
  const needle = Buffer.from(marker)
  return files.filter((file) => readFileSync(file).includes(needle))
}

/** sha256 of every file of the input (its folder: extents and data files live next to it). */
function sourceSnapshot(input: string): Record<string, string> {
  const folder = statSync(input).isDirectory() ? input : dirname(input)
  return Object.fromEntries(filesUnder(folder).map((file) => [file, sha256(file)]))
}

/** What every run must leave behind, whatever its outcome. */
function assertNoTrace(out: string, marker: string, texts: string[], what: string): void {
  for (const text of texts) assert.ok(!text.includes(marker), `${what}: the marker's content appears in the command's output`)
  assert.deepEqual(holdersOf(marker, filesUnder(out)), [], `${what}: the marker's content appears in an output file`)
  const part = filesUnder(out).filter((file) => file.endsWith('.part'))
  assert.deepEqual(part, [], `${what}: no .part file is left`)
  const workDirs = existsSync(out) ? readdirSync(out).filter((entry) => entry.startsWith('.hyper2kvm-')) : []
  assert.deepEqual(workDirs, [], `${what}: no work directory is left`)
}

/** A JSON file's content, or undefined while it is still being written. */
function parsedOrUndefined(file: string): {error_code: string} | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as {error_code: string}
  } catch {
    return undefined
  }
}

function assertConverted(out: string, expected: NonNullable<BuiltCase['expected']>, what: string): void {
  const images = filesUnder(out).filter((file) => file.endsWith('.qcow2'))
  assert.equal(images.length, 1, `${what}: one output image (${images.join(', ')})`)
  // Exit 0 = identical guest content (sizes may differ only by trailing zeros).
  execFileSync('qemu-img', ['compare', '-q', '-f', 'qcow2', '-F', expected.format, images[0]!, expected.path])
}

// Mocha declares tests synchronously: the cases are loaded before, by a top-level await.
const CASES = await loadCases()

describe('hostile images: qemu opens only what the loader pinned', function () {
  this.timeout(180_000)
  let root: string
  let cleanup: () => void
  const daemons: RunningDaemon[] = []

  before(() => {
    ;({cleanup, dir: root} = makeTempDir('h2k-hostile-images-'))
  })
  after(() => cleanup())
  afterEach(() => killAll(daemons))

  it('the corpus has cases for findings 1, 2 and 11, each with a build and an expectation', () => {
    assert.ok(CASES.length >= 11, `${CASES.length} cases`)
    for (const {name, spec} of CASES) assert.ok(spec.expect.code !== undefined || spec.expect.converts === true, name)
    assert.deepEqual([...new Set(CASES.map((c) => c.spec.finding))].sort((a, b) => a - b), [1, 2, 11])
  })

  for (const testCase of CASES) {
    const {name, spec} = testCase
    describe(name, () => {
      let dir: string
      let built: BuiltCase
      let marker: string

      before(async () => {
        dir = join(root, name)
        mkdirSync(dir, {recursive: true})
        marker = `H2K-MARKER-${randomBytes(12).toString('hex')}`
        built = await testCase.build(dir, marker)
        assert.ok(readFileSync(built.marker, 'utf8').includes(marker), 'the marker file holds the marker')
        assert.ok(!built.marker.startsWith(statSync(built.input).isDirectory() ? built.input : dirname(built.input)), 'the marker lies outside the input')
      })

      const cwd = (): string => (spec.cwd === 'marker' ? dirname(built.marker) : spec.cwd === 'input' ? dirname(built.input) : dir)

      it(`convert: ${spec.expect.code ?? 'converts'} — ${spec.description}`, async () => {
        const out = join(dir, 'out-convert')
        const before = sourceSnapshot(built.input)
        const markerHash = sha256(built.marker)
        const result = await runCli(['convert', built.input, '--output-dir', out, '--json'], {cwd: cwd()})
        if (spec.expect.code) {
          assert.equal(result.json?.error?.code, spec.expect.code, `${result.stdout}\n${result.stderr}`)
          assert.notEqual(result.code, 0)
        } else {
          assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`)
          assertConverted(out, built.expected!, 'convert')
        }
        assertNoTrace(out, marker, [result.stdout, result.stderr], 'convert')
        assert.deepEqual(sourceSnapshot(built.input), before, 'the source files are byte-identical')
        assert.equal(sha256(built.marker), markerHash, 'the marker file is untouched')
      })

      if (spec.batch) {
        it(`batch with restrict_inputs_to: . — ${spec.expect.code ?? 'converts'}`, async () => {
          const out = join(dir, 'out-batch')
          const before = sourceSnapshot(built.input)
          const jobFile = join(dir, 'batch.yaml')
          writeFileSync(jobFile, `output_dir: ${out}\nrestrict_inputs_to: .\njobs:\n  - input: ${relative(dir, built.input)}\n`)
          const result = await runCli(['batch', jobFile, '--json'], {cwd: cwd()})
          const job = result.json?.jobs?.[0]
          if (spec.expect.code) {
            assert.equal(job?.error?.code, spec.expect.code, `${result.stdout}\n${result.stderr}`)
            assert.notEqual(result.code, 0)
          } else {
            assert.equal(job?.status, 'succeeded', `${result.stdout}\n${result.stderr}`)
            assertConverted(out, built.expected!, 'batch')
          }
          assertNoTrace(out, marker, [result.stdout, result.stderr], 'batch')
          assert.deepEqual(sourceSnapshot(built.input), before, 'the source files are byte-identical')
        })
      }

      if (spec.daemon) {
        it(`daemon (watch layout): fails with ${spec.expect.code}, and its error file does not hold the marker`, async () => {
          const base = join(dir, 'daemon')
          const watch = join(base, 'queue')
          const out = join(base, 'out')
          mkdirSync(watch, {recursive: true})
          const d = await startDaemon(['--watch-dir', watch, '--output-dir', out])
          daemons.push(d)
          // Dropped as an upload would be: a copy, with the same hostile header.
          const dropped = basename(built.input)
          copyFileSync(built.input, join(watch, `.${dropped}.part`))
          execFileSync('mv', [join(watch, `.${dropped}.part`), join(watch, dropped)])
          const job = await until(`${dropped} failed`, () => jobs(out).find((j) => j.source_path === dropped && j.status === 'failed'), 60_000, d)
          // The store records the failure a moment before the error file is complete.
          const record = await until('its error file', () => {
            const found = filesUnder(base).filter((file) => file.endsWith('.error.json'))
            assert.ok(found.length <= 1, `one error file: ${found.join(', ')}`)
            return found.length === 1 && parsedOrUndefined(found[0]!)
          }, 30_000, d)
          assert.equal(record.error_code, spec.expect.code)
          assert.ok(job.error === null || !job.error.includes(marker))
          d.child.kill('SIGTERM')
          await d.exited
          assert.deepEqual(holdersOf(marker, filesUnder(base)), [], 'the marker is in no file of the watch or output directory')
          assertNoTrace(out, marker, [d.stderr()], 'daemon')
        })
      }
    })
  }
})
