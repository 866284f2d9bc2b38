import assert from 'node:assert/strict'
import {existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {JobStore, type JobRow} from '../../src/daemon/store.js'
import {daemonSuite} from '../helpers/daemon-suite.js'
import {type RunningDaemon, startDaemon, today, until} from '../helpers/daemon-process.js'
import {type PgCluster, usePgCluster} from '../helpers/pg-cluster.js'
import {runCli} from '../helpers/run-cli.js'
import {convertedIntact, makeTinyDisks, type TinyDisk} from '../helpers/tiny-disks.js'

/**
 * One engine of the matrix: how a daemon's configuration names its store, and how the test opens that
 * store read-only to look at it (the daemon's own JobStore, so both engines are read the same way).
 */
interface Engine {
  name: 'sqlite' | 'postgres'
  /** Configuration lines naming the store (none: the embedded SQLite store in output_dir/.daemon). */
  storeLines(dir: string): Promise<string[]>
  open(out: string): JobStore
}

function sqliteEngine(): Engine {
  return {
    name: 'sqlite',
    open: (out) => JobStore.open(out, {readonly: true}),
    storeLines: async () => [],
  }
}

function postgresEngine(pg: () => PgCluster): Engine {
  const databases = new Map<string, string>()
  return {
    name: 'postgres',
    open: (out) => JobStore.open({postgres: pg().settings(databases.get(out)), sqlitePath: join(out, 'unused.db')}, {readonly: true}),
    async storeLines(dir) {
      const database = await pg().createDatabase()
      databases.set(join(dir, 'out'), database)
      writeFileSync(join(dir, 'store-password'), `${pg().password}\n`, {mode: 0o600})
      return ['store:', `  url: postgres://${pg().role}@127.0.0.1:${pg().port}/${database}`, '  password_file: store-password', '  connect_timeout: 10']
    },
  }
}

/**
 * The single-node daemon cases that matter for a store, run against both engines: the same configuration
 * but for its `store:` section, the same assertions on what the store holds and what lands on disk.
 * Multi-node behaviour is cluster.test.ts and cluster-faults.test.ts (PostgreSQL only).
 */
describe('daemon on both store engines (one matrix: SQLite, PostgreSQL)', function () {
  this.timeout(120_000)
  const pg = usePgCluster()
  const engines = [sqliteEngine(), postgresEngine(pg)]

  for (const engine of engines) {
    describe(`engine: ${engine.name}`, function () {
      const suite = daemonSuite(`h2k-engines-${engine.name}-`)
      const stores: JobStore[] = []
      afterEach(() => {
        for (const store of stores.splice(0)) store.close()
      })

      /** A test's directories and configuration (drop dir `in`, output_dir `out`); `extra`: more YAML lines. */
      async function setup(name: string, extra: string[] = []): Promise<{dir: string; inbox: string; out: string; config: string}> {
        const dir = join(suite.dir, name)
        const inbox = join(dir, 'in')
        const out = join(dir, 'out')
        mkdirSync(inbox, {recursive: true})
        mkdirSync(out, {recursive: true})
        const config = join(dir, 'daemon.yaml')
        const lines = ['command: daemon', 'watch_dir: in', 'output_dir: out', ...(await engine.storeLines(dir)), ...extra, '']
        writeFileSync(config, lines.join('\n'))
        return {config, dir, inbox, out}
      }

      async function start(config: string, out: string): Promise<RunningDaemon> {
        const daemon = await startDaemon(['--config', config], out, undefined, {env: {HYPER2KVM_STORE_PASSWORD: ''}})
        suite.daemons.push(daemon)
        return daemon
      }

      /** The store as the test reads it (opened once the daemon has created it). */
      function storeOf(out: string): JobStore {
        const store = engine.open(out)
        stores.push(store)
        return store
      }

      const jobOf = (store: JobStore, source: string, status?: string): JobRow | undefined => store.jobs({}).find((j) => j.source_path === source && (status === undefined || j.status === status))
      const steps = (store: JobStore, id: string): string[] => store.historyOf(id).map((h) => h.to_status)

      async function disks(dir: string, count: number, prefix: string): Promise<TinyDisk[]> {
        return makeTinyDisks(join(dir, 'disks'), count, {prefix, qcow2Every: 2})
      }

      it('a dropped disk is converted once: output equal to it, history queued > running > succeeded, input archived; ctl status and ctl jobs show it', async () => {
        const {config, dir, inbox, out} = await setup('convert')
        const daemon = await start(config, out)
        const [raw, qcow2] = await disks(dir, 2, 'one')
        for (const disk of [raw!, qcow2!]) renameSync(disk.path, join(inbox, disk.name))
        const store = storeOf(out)
        for (const disk of [raw!, qcow2!]) {
          const job = await until(`${disk.name} succeeded`, () => jobOf(store, disk.name, 'succeeded'), 60_000, daemon)
          assert.deepEqual(steps(store, job.id), ['queued', 'running', 'succeeded'])
          assert.equal(job.attempts, 1)
          assert.deepEqual(readdirSync(job.output_path).sort(), [`${disk.stem}.qcow2`, `${disk.stem}.report.json`])
          assert.ok(await convertedIntact(disk, join(job.output_path, `${disk.stem}.qcow2`)), `${disk.name}: the output holds the disk`)
          await until(`${disk.name} archived`, () => existsSync(join(inbox, '.processed', today(), disk.name)), 10_000, daemon)
        }
        assert.equal(store.jobs({}).length, 2)
        assert.deepEqual(readdirSync(inbox).filter((n) => !n.startsWith('.')), [])

        const status = await runCli(['ctl', 'status', '--config', config, '--json'])
        assert.equal(status.code, 0, status.stderr)
        assert.equal(status.json.state, 'RUNNING')
        assert.equal(status.json.pid, daemon.child.pid)
        const listed = await runCli(['ctl', 'jobs', '--config', config, '--json'])
        assert.equal(listed.code, 0, listed.stderr)
        assert.deepEqual(listed.json.jobs.map((j: {source_path: string; status: string}) => `${j.source_path}:${j.status}`).sort(), [`${raw!.name}:succeeded`, `${qcow2!.name}:succeeded`])
        const stats = await runCli(['ctl', 'stats', '--config', config, '--json'])
        assert.equal(stats.json.stats.total_processed, 2, stats.stderr)
        daemon.child.kill('SIGTERM')
        assert.equal(await daemon.exited, 0)
      })

      it('a permanent failure fails once with its error file; a retryable one waits, is retried and succeeds', async () => {
        const {config, dir, inbox, out} = await setup('failures', ['retry_policy:', '  max_retries: 3', '  retry_delay: 0.5', '  backoff_multiplier: 2', '  jitter: none'])
        const daemon = await start(config, out)
        writeFileSync(join(inbox, 'empty.vmdk'), '')
        const store = storeOf(out)
        const failed = await until('empty.vmdk failed', () => jobOf(store, 'empty.vmdk', 'failed'), 60_000, daemon)
        assert.equal(failed.attempts, 1)
        assert.deepEqual(steps(store, failed.id), ['queued', 'running', 'failed'])
        assert.equal(JSON.parse(failed.error!).code, 'H2K_INPUT_EMPTY')
        await until('its error file', () => existsSync(join(inbox, '.errors', 'empty.vmdk.error.json')), 10_000, daemon)
        const record = JSON.parse(readFileSync(join(inbox, '.errors', 'empty.vmdk.error.json'), 'utf8')) as {error_code: string; retry_info: {attempts: number}}
        assert.equal(record.error_code, 'H2K_INPUT_EMPTY')
        assert.equal(record.retry_info.attempts, 1)

        // A file where the day's output directory belongs: writing an output fails (H2K_OUTPUT_FAILED, retryable).
        // (The failed job left its day directory behind, empty: no output of a failed job is kept.)
        const blocker = join(out, today())
        assert.deepEqual(existsSync(blocker) ? readdirSync(blocker) : [], [], 'the failed job left no output')
        rmSync(blocker, {force: true, recursive: true})
        writeFileSync(blocker, 'in the way')
        const [disk] = await disks(dir, 1, 'retry')
        renameSync(disk!.path, join(inbox, disk!.name))
        const waiting = await until(`${disk!.name} waiting for a retry`, () => jobOf(store, disk!.name, 'retry_wait'), 60_000, daemon)
        assert.equal(JSON.parse(waiting.error!).code, 'H2K_OUTPUT_FAILED')
        rmSync(blocker)
        const done = await until(`${disk!.name} succeeded`, () => jobOf(store, disk!.name, 'succeeded'), 60_000, daemon)
        assert.ok(done.attempts >= 2)
        const history = steps(store, done.id)
        assert.deepEqual(history.slice(0, 3), ['queued', 'running', 'retry_wait'])
        assert.equal(history.at(-1), 'succeeded')
        assert.equal(history.filter((s) => s === 'succeeded').length, 1)
        assert.equal(store.jobs({}).filter((j) => j.source_path === disk!.name).length, 1, 'a retry is the same job')
        assert.ok(await convertedIntact(disk!, join(done.output_path, `${disk!.stem}.qcow2`)))
      })

      it('dedup: the same disk dropped again is a duplicate (recorded in the store), not converted twice', async () => {
        const {config, dir, inbox, out} = await setup('dedup', ['enable_deduplication: true'])
        const daemon = await start(config, out)
        const [disk] = await disks(dir, 1, 'dup')
        const copy = join(dir, 'copy.raw')
        writeFileSync(copy, readFileSync(disk!.path))
        renameSync(disk!.path, join(inbox, disk!.name))
        const store = storeOf(out)
        const first = await until('first succeeded', () => jobOf(store, disk!.name, 'succeeded'), 60_000, daemon)
        await until('first archived', () => existsSync(join(inbox, '.processed', today(), disk!.name)), 10_000, daemon)
        renameSync(copy, join(inbox, disk!.name))
        const duplicate = await until('the copy is a duplicate', () => jobOf(store, disk!.name, 'duplicate'), 60_000, daemon)
        assert.notEqual(duplicate.id, first.id)
        await until('the copy moved to .duplicates/', () => existsSync(join(inbox, '.duplicates', today(), disk!.name)), 10_000, daemon)
        assert.equal(store.jobs({}).filter((j) => j.status === 'succeeded').length, 1, 'converted once')
        assert.deepEqual(readdirSync(join(out, today())), [disk!.stem], 'one output directory')
        const recorded = store.processedFiles()
        assert.equal(recorded.length, 1)
        assert.equal(recorded[0]!.job_id, first.id)
        assert.match(String(recorded[0]!.file_hash), /^[0-9a-f]{64}$/)
        const listed = await runCli(['dedup', 'list', '--config', config, '--json'])
        assert.equal(listed.code, 0, listed.stderr)
        assert.deepEqual(listed.json.files.map((f: {filename: string}) => f.filename), [disk!.name])
      })

      it('kill -9 while paused with work waiting (SQLite: queued jobs; PostgreSQL: unclaimed files), then a restart: nothing is lost and each disk runs once', async () => {
        const {config, dir, inbox, out} = await setup('restart')
        const first = await start(config, out)
        const paused = await runCli(['ctl', 'pause', '--config', config, '--json'])
        assert.equal(paused.json?.state, 'PAUSED', paused.stderr)
        const batch = await disks(dir, 3, 'queued')
        for (const disk of batch) renameSync(disk.path, join(inbox, disk.name))
        const store = storeOf(out)
        if (engine.name === 'sqlite') {
          // Alone on its store, a paused daemon keeps claiming: the files become queued jobs.
          await until('three jobs queued', () => store.jobs({status: 'queued'}).length === 3, 60_000, first)
          await sleep(300)
        } else {
          // On a shared store a paused node claims nothing, so that the others may take the files.
          await sleep(1500)
          assert.deepEqual(readdirSync(inbox).filter((n) => !n.startsWith('.')).sort(), batch.map((d) => d.name).sort(), 'the files wait in the drop directory')
        }
        assert.equal(store.jobs({}).filter((j) => j.status !== 'queued').length, 0, 'nothing runs while paused')
        first.child.kill('SIGKILL')
        await first.exited

        const second = await start(config, out)
        for (const disk of batch) {
          const job = await until(`${disk.name} succeeded after the restart`, () => jobOf(store, disk.name, 'succeeded'), 60_000, second)
          assert.deepEqual(steps(store, job.id), ['queued', 'running', 'succeeded'], `${disk.name}: run once`)
          assert.ok(await convertedIntact(disk, join(job.output_path, `${disk.stem}.qcow2`)))
        }
        assert.equal(store.jobs({}).length, 3, 'no job made twice')
        await until('every claim settled', () => readdirSync(join(inbox, '.processing')).length === 0, 10_000, second)
        second.child.kill('SIGTERM')
        assert.equal(await second.exited, 0)
      })
    })
  }
})
