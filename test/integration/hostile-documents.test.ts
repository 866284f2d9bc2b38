import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, readdirSync, readFileSync} from 'node:fs'
import {copyFile, rename, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {probeLatency} from '../helpers/control-latency.js'
import {jobs, killAll, type RunningDaemon, startDaemon, today, until} from '../helpers/daemon-process.js'
import {runCli} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const CASES = new URL('../hostile/documents/', import.meta.url).pathname

interface DocumentCase {
  name: string
  description: string
  finding: number
  /** The code, and a part of the message that names the reason. */
  expect: {code: string; message?: string}
}

const cases: DocumentCase[] = readdirSync(CASES, {withFileTypes: true})
  .filter((e) => e.isDirectory())
  .map((e) => ({name: e.name, ...(JSON.parse(readFileSync(join(CASES, e.name, 'case.json'), 'utf8')) as Omit<DocumentCase, 'name'>)}))

/** Every file under `dir` (recursively), as paths relative to it. */
function listTree(dir: string): string[] {
  return readdirSync(dir, {recursive: true, withFileTypes: true})
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort()
}

/** The case's document, built into a fresh directory with a fresh marker. */
async function buildCase(c: DocumentCase, dir: string): Promise<{file: string; marker: string}> {
  const marker = `H2K-MARKER-${randomBytes(8).toString('hex')}`
  const {build} = (await import(join(CASES, c.name, 'build.ts'))) as {build: (dir: string, marker: string) => Promise<string>}
  mkdirSync(dir, {recursive: true})
  return {file: await build(dir, marker), marker}
}

/** A generous wall-clock bound per CLI run (node startup included); main took 9 s and 600+ MB for one file. */
const CLI_SECONDS = 5

/**
 * Hostile documents (test/hostile/documents/<case>/): each is refused quickly with its code by
 * `validate`, `convert --job` and `batch`, and by a daemon that keeps answering its control socket
 * meanwhile; nothing of the document reaches any output, log or error file.
 */
describe('hostile documents', function () {
  this.timeout(180_000)
  let dir: string
  let cleanup: () => void
  const daemons: RunningDaemon[] = []
  before(() => ({cleanup, dir} = makeTempDir('h2k-hostile-docs-')))
  afterEach(() => killAll(daemons))
  after(() => cleanup())

  for (const c of cases) {
    it(`${c.name} (finding ${c.finding}): refused by validate, convert --job and batch`, async () => {
      const caseDir = join(dir, c.name)
      const {file, marker} = await buildCase(c, caseDir)
      const before = listTree(caseDir)
      for (const args of [['validate', file], ['convert', '--job', file], ['batch', file]]) {
        const started = Date.now()
        const run = await runCli([...args, '--json'], {cwd: caseDir})
        const seconds = (Date.now() - started) / 1000
        const what = `${args[0]} ${c.name}`
        assert.equal(run.json?.error?.code, c.expect.code, `${what}: ${run.stdout}${run.stderr}`)
        if (c.expect.message) assert.ok(String(run.json.error.message).includes(c.expect.message), `${what}: ${run.json.error.message}`)
        assert.ok(seconds < CLI_SECONDS, `${what} took ${seconds} s`)
        assert.ok(!`${run.stdout}${run.stderr}`.includes(marker), `${what}: the document's content is echoed`)
      }
      assert.deepEqual(listTree(caseDir), before, 'nothing written next to the document (no output, .part or work directory)')
    })
  }

  it('a daemon refuses them all while its control socket keeps answering', async () => {
    const root = join(dir, 'workflow')
    const out = join(dir, 'workflow-out')
    const inbox = join(root, 'to_be_processed')
    mkdirSync(inbox, {recursive: true})
    const built = new Map<string, string>()
    const staging = join(dir, 'staging')
    for (const c of cases) {
      const {file, marker} = await buildCase(c, join(staging, c.name))
      built.set(`${c.name}-${file}`, marker)
    }
    const logFile = join(dir, 'daemon.log')
    const config = join(dir, 'daemon.yaml')
    await writeFile(config, `command: daemon\nworkflow_mode: true\nworkflow_dir: ${root}\noutput_dir: ${out}\nlog_file: ${logFile}\nverbose: 2\n`)
    const d = await startDaemon(['--config', config], out)
    daemons.push(d)
    const probe = probeLatency(join(out, '.daemon', 'control.sock'))
    for (const c of cases) {
      const file = [...built.keys()].find((k) => k.startsWith(`${c.name}-`))!
      await copyFile(join(staging, c.name, file.slice(c.name.length + 1)), join(inbox, `${file}.part`))
      await rename(join(inbox, `${file}.part`), join(inbox, file))
    }
    await until(`${cases.length} jobs failed`, () => jobs(out).length === cases.length && jobs(out).every((j) => j.status === 'failed'), 90_000, d)
    const {probes, worstMs} = await probe.stop()
    assert.ok(probes >= 3, `the control socket was probed during the attack (${probes} probes)`)
    assert.ok(worstMs < 1000, `the control socket answered within ${Math.round(worstMs)} ms at worst while the documents were refused`)

    const failedDir = join(root, 'failed', today())
    await until('error files written', () => [...built.keys()].every((f) => existsSync(join(failedDir, `${f}.error.json`))), 10_000, d)
    const texts: string[] = [d.stderr(), readFileSync(logFile, 'utf8')]
    for (const f of readdirSync(failedDir)) if (/\.(error|meta|report)\.json$/.test(f)) texts.push(readFileSync(join(failedDir, f), 'utf8'))
    for (const row of jobs(out)) {
      const error = JSON.parse(row.error ?? '{}') as {code?: string; message?: string}
      const c = cases.find((k) => row.source_path.startsWith(`${k.name}-`))!
      assert.equal(error.code, c.expect.code, `${row.source_path}: ${row.error}`)
      if (c.expect.message) assert.ok(String(error.message).includes(c.expect.message), `${row.source_path}: ${error.message}`)
      texts.push(row.error ?? '')
    }
    for (const [file, marker] of built) assert.ok(texts.every((t) => !t.includes(marker)), `${file}: the document's content is echoed in a log or error file`)
    // A claim's directory is removed last, after its error files and moves.
    await until('no claim left behind', () => readdirSync(join(root, 'processing')).length === 0, 10_000, d)
    assert.equal((await runCli(['ctl', 'stop', '--output-dir', out])).code, 0)
    assert.equal(await d.exited, 0)
  })
})
