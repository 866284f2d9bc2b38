import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

import Database from 'better-sqlite3'

import {jobOf, jobs, killAll, type RunningDaemon, startDaemon, until} from '../helpers/daemon-process.js'
import {makePatternedRaw} from '../helpers/patterned-image.js'
import {runCli, sha256} from '../helpers/run-cli.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const DAY = 86_400_000
const daysAgo = (days: number): Date => new Date(Date.now() - days * DAY)
const dateOf = (d: Date): string => d.toISOString().slice(0, 10)
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

interface FailedItem {
  /** The item's files relative to `dir`, main first; each is written with some content. */
  files: string[]
  failedAt: Date
  code: string
  phase: string
  permanent: boolean
  /** Write the `files` field (new daemons) or leave it out (old error files: just the main file). */
  listFiles?: boolean
}

/** A failed item as the daemon leaves it: its files and `<main>.error.json` beside them in `dir`. */
function writeFailed(dir: string, item: FailedItem): string {
  for (const f of item.files) {
    mkdirSync(dirname(join(dir, f)), {recursive: true})
    writeFileSync(join(dir, f), `content of ${f}\n`)
  }
  const main = item.files[0]!
  const record = {
    filename: main,
    filepath: join(dir, main),
    original_path: join(dir, '..', main),
    file_size_mb: 0.01,
    timestamp: item.failedAt.toISOString(),
    job_id: `job-${main.replace(/\W/g, '')}`,
    error: `${main} could not be converted`,
    error_code: item.code,
    exit_code: 3,
    permanent: item.permanent,
    phase: item.phase,
    stage: null,
    suggestion: 'Export the disk again.',
    suggestions: ['Export the disk again.', 'Compare its checksum.'],
    details: {},
    system_info: {available_memory_mb: 1000, free_disk_mb: 1000, node_version: process.version, platform: process.platform},
    retry_info: {attempts: 1, max_retries: 3, retry_enabled: true, retried: false, reason_not_retried: item.permanent ? 'permanent error' : 'max_retries reached'},
    ...(item.listFiles === false ? {} : {files: item.files}),
  }
  const path = join(dir, `${main}.error.json`)
  writeFileSync(path, `${JSON.stringify(record, null, 2)}\n`)
  return path
}

/** errors list|show|summary|retry|purge and dedup check|purge|vacuum|stats through the real CLI. */
describe('daemon maintenance: errors and dedup commands', function () {
  this.timeout(120_000)
  let dir: string
  let cleanup: () => void
  const daemons: RunningDaemon[] = []

  before(() => ({cleanup, dir} = makeTempDir('h2k-errors-dedup-')))
  after(() => cleanup())
  afterEach(() => killAll(daemons))

  it('watch layout: list (newest first), show, summary, purge --dry-run then purge', async () => {
    const watch = join(dir, 'w1', 'queue')
    const errors = join(watch, '.errors')
    mkdirSync(errors, {recursive: true})
    writeFailed(errors, {code: 'H2K_INPUT_CORRUPT', failedAt: daysAgo(40), files: ['old.vmdk'], listFiles: false, permanent: true, phase: 'load'})
    writeFailed(errors, {code: 'H2K_OUTPUT_FAILED', failedAt: daysAgo(1), files: ['new.raw'], permanent: false, phase: 'convert'})
    writeFailed(errors, {code: 'H2K_INPUT_CORRUPT', failedAt: daysAgo(2), files: ['mid.VMDK'], permanent: true, phase: 'load'})
    // An error file that is not JSON: dated by its mtime (50 days ago), still listed and purged.
    writeFileSync(join(errors, 'broken.ova'), 'ova bytes')
    writeFileSync(join(errors, 'broken.ova.error.json'), '{"filename": "broken.ova", trunc')
    utimesSync(join(errors, 'broken.ova.error.json'), daysAgo(50), daysAgo(50))

    const listed = await runCli(['errors', 'list', '--watch-dir', watch, '--json'])
    assert.equal(listed.code, 0, listed.stderr)
    assert.equal(listed.json.layout, 'watch')
    assert.equal(listed.json.count, 4)
    assert.deepEqual(listed.json.errors.map((e: {filename: string}) => e.filename), ['new.raw', 'mid.VMDK', 'old.vmdk', 'broken.ova'])
    assert.deepEqual(listed.json.errors[2].files, ['old.vmdk'], 'an error file without `files` stands for its own file')
    assert.match(listed.json.errors[3].unreadable, /JSON/)
    const human = await runCli(['errors', 'list', '--watch-dir', watch])
    assert.match(human.stdout, /H2K_OUTPUT_FAILED +convert +new\.raw/)
    assert.match(human.stdout, /unreadable +- +broken\.ova/)
    assert.match(human.stdout, /^4 failed file\(s\) in /m)

    // show: by file name, by error-file name, by path; a clear error when absent.
    for (const query of ['old.vmdk', 'old.vmdk.error.json', join(errors, 'old.vmdk'), join(errors, 'old.vmdk.error.json')]) {
      const shown = await runCli(['errors', 'show', query, '--watch-dir', watch, '--json'])
      assert.equal(shown.code, 0, shown.stderr)
      assert.equal(shown.json.error.error_file, join(errors, 'old.vmdk.error.json'), query)
      assert.equal(shown.json.error.error_code, 'H2K_INPUT_CORRUPT')
    }
    const shownHuman = await runCli(['errors', 'show', 'new.raw', '--watch-dir', watch])
    assert.match(shownHuman.stdout, /^code +H2K_OUTPUT_FAILED \(exit 3\), retryable$/m)
    assert.match(shownHuman.stdout, /^suggestion +→ Export the disk again\.$/m)
    assert.match(shownHuman.stdout, /^ +→ Compare its checksum\.$/m)
    assert.match(shownHuman.stdout, /^attempts +1 of 4; not retried: max_retries reached$/m)
    assert.match(shownHuman.stdout, new RegExp(`^files +${escape(join(errors, 'new.raw'))}$`, 'm'))
    const missing = await runCli(['errors', 'show', 'nothing.vmdk', '--watch-dir', watch, '--json'])
    assert.equal(missing.code, 3)
    assert.equal(missing.json.error.code, 'H2K_INPUT_NOT_FOUND')
    assert.ok(missing.json.error.suggestions.includes('`hyper2kvm errors list` shows the failed files.'))

    const summary = await runCli(['errors', 'summary', '--watch-dir', watch, '--json'])
    assert.equal(summary.code, 0, summary.stderr)
    assert.equal(summary.json.total, 4)
    assert.equal(summary.json.permanent, 2)
    assert.equal(summary.json.retryable, 1)
    assert.equal(summary.json.unreadable, 1)
    assert.deepEqual(summary.json.by_error_code, {H2K_INPUT_CORRUPT: 2, H2K_OUTPUT_FAILED: 1, unreadable: 1})
    assert.deepEqual(summary.json.by_phase, {load: 2, convert: 1, unreadable: 1})
    assert.deepEqual(summary.json.by_file_type, {vmdk: 2, ova: 1, raw: 1})
    assert.deepEqual(Object.values(summary.json.by_day), [1, 1, 1, 1])
    assert.equal(Object.keys(summary.json.by_day)[0], dateOf(daysAgo(1)), 'newest day first')
    assert.equal(summary.json.newest, listed.json.errors[0].failed_at)
    assert.equal(summary.json.oldest, listed.json.errors[3].failed_at)
    const summaryHuman = await runCli(['errors', 'summary', '--watch-dir', watch])
    assert.match(summaryHuman.stdout, /^by error code:\n +2 +H2K_INPUT_CORRUPT$/m)

    const bad = await runCli(['errors', 'purge', '--older-than', 'thirty days', '--watch-dir', watch, '--json'])
    assert.equal(bad.code, 2)
    assert.equal(bad.json.error.code, 'H2K_USAGE')
    assert.match(bad.json.error.suggestions[0], /--older-than 30d/)

    const dry = await runCli(['errors', 'purge', '--older-than', '30d', '--dry-run', '--watch-dir', watch, '--json'])
    assert.equal(dry.code, 0, dry.stderr)
    assert.equal(dry.json.dry_run, true)
    assert.deepEqual(dry.json.removed.map((r: {filename: string}) => r.filename), ['old.vmdk', 'broken.ova'])
    assert.deepEqual(dry.json.removed[0].files, [join(errors, 'old.vmdk')])
    assert.equal(dry.json.kept, 2)
    assert.equal(readdirSync(errors).length, 8, 'a dry run removes nothing')

    const purged = await runCli(['errors', 'purge', '--older-than', '30d', '--watch-dir', watch])
    assert.equal(purged.code, 0, purged.stderr)
    assert.match(purged.stdout, /^Removed 2 error file\(s\) older than 30d /m)
    assert.deepEqual(readdirSync(errors).sort(), ['mid.VMDK', 'mid.VMDK.error.json', 'new.raw', 'new.raw.error.json'])
    assert.ok(existsSync(watch), 'the watch directory itself stays')
    const after = await runCli(['errors', 'list', '--watch-dir', watch, '--json'])
    assert.deepEqual(after.json.errors.map((e: {filename: string}) => e.filename), ['new.raw', 'mid.VMDK'])
  })

  it('workflow layout (--config): dated failed/<date>/ dirs; retry moves the files back; purge removes empty dated dirs', async () => {
    const base = join(dir, 'w2')
    const workflow = join(base, 'wf')
    const failed = join(workflow, 'failed')
    const inbox = join(workflow, 'to_be_processed')
    mkdirSync(inbox, {recursive: true})
    const config = join(base, 'workflow.yaml')
    writeFileSync(config, 'command: daemon\nworkflow_mode: true\nworkflow_dir: wf\noutput_dir: out\n')
    const oldDay = join(failed, dateOf(daysAgo(100)))
    const recentDay = join(failed, dateOf(daysAgo(3)))
    const todayDir = join(failed, dateOf(new Date()))
    writeFailed(oldDay, {code: 'H2K_OVF_INVALID', failedAt: daysAgo(100), files: ['legacy.ovf', 'legacy-disk1.vmdk'], permanent: true, phase: 'load'})
    writeFailed(recentDay, {code: 'H2K_EXTENT_MISSING', failedAt: daysAgo(3), files: ['app.ovf', 'disks/app-1.vmdk', 'disks/app-2.vmdk'], permanent: true, phase: 'load'})
    writeFailed(todayDir, {code: 'H2K_TOOL_FAILED', failedAt: new Date(), files: ['db.vhdx'], permanent: false, phase: 'convert'})
    writeFailed(todayDir, {code: 'H2K_TOOL_FAILED', failedAt: new Date(Date.now() - 1000), files: ['taken.qcow2'], permanent: false, phase: 'convert'})
    // A file that is not an error-file directory: ignored.
    writeFileSync(join(failed, 'README.txt'), 'not dated')

    const listed = await runCli(['errors', 'list', '--config', config, '--json'])
    assert.equal(listed.code, 0, listed.stderr)
    assert.equal(listed.json.layout, 'workflow')
    assert.deepEqual(listed.json.error_roots, [failed])
    assert.deepEqual(listed.json.errors.map((e: {filename: string}) => e.filename), ['db.vhdx', 'taken.qcow2', 'app.ovf', 'legacy.ovf'])
    assert.deepEqual(listed.json.errors[2].files, ['app.ovf', 'disks/app-1.vmdk', 'disks/app-2.vmdk'])
    const human = await runCli(['errors', 'list', '--config', config])
    assert.match(human.stdout, /H2K_EXTENT_MISSING +load +app\.ovf \(\+2 file\(s\)\)/)

    const shown = await runCli(['errors', 'show', 'app.ovf', '--config', config])
    assert.equal(shown.code, 0, shown.stderr)
    assert.match(shown.stdout, /^code +H2K_EXTENT_MISSING \(exit 3\), permanent$/m)
    assert.ok(shown.stdout.includes(join(recentDay, 'disks', 'app-2.vmdk')))

    const summary = await runCli(['errors', 'summary', '--config', config, '--json'])
    assert.equal(summary.json.layout, 'workflow')
    assert.equal(summary.json.total, 4)
    assert.deepEqual(summary.json.by_file_type, {ovf: 2, qcow2: 1, vhdx: 1})
    assert.deepEqual(summary.json.by_error_code, {H2K_TOOL_FAILED: 2, H2K_EXTENT_MISSING: 1, H2K_OVF_INVALID: 1})
    assert.deepEqual(summary.json.by_day, {[dateOf(new Date())]: 2, [dateOf(daysAgo(3))]: 1, [dateOf(daysAgo(100))]: 1})
    assert.equal(summary.json.permanent, 2)
    assert.equal(summary.json.retryable, 2)

    // retry refuses when a target exists, and then moves nothing.
    writeFileSync(join(inbox, 'taken.qcow2'), 'a newer upload')
    const refused = await runCli(['errors', 'retry', 'taken.qcow2', '--config', config, '--json'])
    assert.equal(refused.code, 5)
    assert.equal(refused.json.error.code, 'H2K_OUTPUT_EXISTS')
    assert.equal(readFileSync(join(inbox, 'taken.qcow2'), 'utf8'), 'a newer upload')
    assert.ok(existsSync(join(todayDir, 'taken.qcow2')) && existsSync(join(todayDir, 'taken.qcow2.error.json')))

    // retry: the OVF and its disks go back with their relative paths; the error file and the emptied dated dir go.
    const retried = await runCli(['errors', 'retry', 'app.ovf', '--config', config, '--json'])
    assert.equal(retried.code, 0, retried.stderr)
    assert.equal(retried.json.requeued, join(inbox, 'app.ovf'))
    assert.deepEqual(retried.json.files, [join(inbox, 'app.ovf'), join(inbox, 'disks', 'app-1.vmdk'), join(inbox, 'disks', 'app-2.vmdk')])
    assert.equal(readFileSync(join(inbox, 'disks', 'app-2.vmdk'), 'utf8'), 'content of disks/app-2.vmdk\n')
    assert.ok(existsSync(join(inbox, 'app.ovf')))
    assert.ok(!existsSync(recentDay), 'the dated directory left empty is removed')
    const again = await runCli(['errors', 'retry', 'app.ovf', '--config', config, '--json'])
    assert.equal(again.json.error.code, 'H2K_INPUT_NOT_FOUND')

    const dry = await runCli(['errors', 'purge', '--older-than', '2w', '--dry-run', '--config', config, '--json'])
    assert.equal(dry.code, 0, dry.stderr)
    assert.deepEqual(dry.json.removed.map((r: {filename: string}) => r.filename), ['legacy.ovf'])
    assert.deepEqual(dry.json.removed[0].files, [join(oldDay, 'legacy.ovf'), join(oldDay, 'legacy-disk1.vmdk')])
    assert.ok(existsSync(join(oldDay, 'legacy-disk1.vmdk')))
    const purged = await runCli(['errors', 'purge', '--older-than', '2w', '--config', config, '--json'])
    assert.equal(purged.code, 0, purged.stderr)
    assert.deepEqual(purged.json.removed_dirs, [oldDay])
    assert.ok(!existsSync(oldDay), 'files, error file and the empty dated directory are gone')
    assert.deepEqual(readdirSync(failed).sort(), [dateOf(new Date()), 'README.txt'])
    assert.deepEqual(readdirSync(todayDir).sort(), ['db.vhdx', 'db.vhdx.error.json', 'taken.qcow2', 'taken.qcow2.error.json'])
    const none = await runCli(['errors', 'purge', '--older-than', '2w', '--config', config, '--json'])
    assert.equal(none.json.removed.length, 0)
    assert.equal(none.json.kept, 2)
  })

  it('a real daemon writes the error file of a garbage .vmdk: list, show, summary and retry read it', async () => {
    const base = join(dir, 'w3')
    const watch = join(base, 'queue')
    const out = join(base, 'out')
    mkdirSync(watch, {recursive: true})
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, 'command: daemon\nwatch_dir: queue\noutput_dir: out\nretry_policy:\n  enabled: false\n')
    const d = await startDaemon(['--config', config], out)
    daemons.push(d)
    // 64 KiB of a repeating text: no loader recognises it as a disk.
    writeFileSync(join(watch, 'garbage.vmdk'), Buffer.alloc(65_536, 'not a disk image '))
    await until('garbage failed', () => jobOf(out, 'garbage.vmdk', 'failed'), 30_000, d)
    // The error file is written before the input is moved beside it: both are waited for.
    await until('its error file and input', () => existsSync(join(watch, '.errors', 'garbage.vmdk.error.json')) && existsSync(join(watch, '.errors', 'garbage.vmdk')), 10_000, d)
    const record = JSON.parse(readFileSync(join(watch, '.errors', 'garbage.vmdk.error.json'), 'utf8')) as {error_code: string; phase: string}

    const listed = await runCli(['errors', 'list', '--config', config, '--json'])
    assert.equal(listed.code, 0, listed.stderr)
    assert.equal(listed.json.count, 1)
    assert.equal(listed.json.errors[0].filename, 'garbage.vmdk')
    assert.equal(listed.json.errors[0].error_code, record.error_code)
    assert.deepEqual(listed.json.errors[0].files, ['garbage.vmdk'])
    assert.ok(existsSync(join(watch, '.errors', 'garbage.vmdk')), 'the failed input is kept beside its error file')
    assert.match(record.error_code, /^H2K_INPUT_/)
    const shown = await runCli(['errors', 'show', 'garbage.vmdk', '--config', config])
    assert.equal(shown.code, 0, shown.stderr)
    assert.match(shown.stdout, new RegExp(`^code +${record.error_code} \\(exit 3\\), permanent$`, 'm'))
    assert.match(shown.stdout, /^suggestion +→ /m)
    const summary = await runCli(['errors', 'summary', '--config', config, '--json'])
    assert.deepEqual(summary.json.by_error_code, {[record.error_code]: 1})
    assert.deepEqual(summary.json.by_phase, {[record.phase]: 1})
    assert.equal(summary.json.permanent, 1)

    const retried = await runCli(['errors', 'retry', 'garbage.vmdk', '--config', config, '--json'])
    assert.equal(retried.code, 0, retried.stderr)
    assert.equal(retried.json.requeued, join(watch, 'garbage.vmdk'))
    // The daemon takes it again as a new job, which fails the same way and writes a new error file.
    await until('garbage failed twice', () => jobs(out).filter((j) => j.source_path === 'garbage.vmdk' && j.status === 'failed').length === 2, 30_000, d)
    await until('the new error file', () => existsSync(join(watch, '.errors', 'garbage.vmdk.error.json')), 10_000, d)
    const relisted = await runCli(['errors', 'list', '--config', config, '--json'])
    assert.equal(relisted.json.count, 1)
    assert.notEqual(relisted.json.errors[0].job_id, listed.json.errors[0].job_id)
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
  })

  it('dedup check (sha256 hit and miss), stats, purge --dry-run then purge, vacuum while the daemon runs', async () => {
    const base = join(dir, 'd1')
    const watch = join(base, 'queue')
    const out = join(base, 'out')
    mkdirSync(watch, {recursive: true})
    const config = join(base, 'daemon.yaml')
    writeFileSync(config, 'command: daemon\nwatch_dir: queue\noutput_dir: out\nenable_deduplication: true\ndeduplication_hash: sha256\n')
    const raw = makePatternedRaw(join(base, 'source.raw'))
    const missingStore = await runCli(['dedup', 'stats', '--output-dir', join(base, 'nowhere'), '--json'])
    assert.equal(missingStore.code, 12)
    assert.equal(missingStore.json.error.code, 'H2K_DAEMON_NOT_RUNNING')

    const d = await startDaemon(['--config', config], out)
    daemons.push(d)
    execFileSync('cp', ['--sparse=always', raw, join(watch, 'web01.raw')])
    const job = await until('web01 converted', () => jobOf(out, 'web01.raw', 'succeeded'), 60_000, d)

    // The same content under another name: a content-hash hit, with the job and when.
    const copy = join(base, 'renamed.raw')
    copyFileSync(raw, copy)
    const hit = await runCli(['dedup', 'check', copy, '--config', config, '--json'])
    assert.equal(hit.code, 0, hit.stderr)
    assert.equal(hit.json.key, 'sha256')
    assert.equal(hit.json.key_from, 'config')
    assert.equal(hit.json.hash, sha256(raw))
    assert.equal(hit.json.duplicate, true)
    assert.equal(hit.json.dedup_enabled, true)
    assert.equal(hit.json.would_skip, true)
    assert.equal(hit.json.match.job_id, job.id)
    assert.equal(hit.json.match.filename, 'web01.raw')
    assert.equal(hit.json.match.job_status, 'succeeded')
    const hitHuman = await runCli(['dedup', 'check', copy, '--config', config])
    assert.match(hitHuman.stdout, new RegExp(`^duplicate of job ${job.id} \\(web01\\.raw, processed \\S+ → ${escape(job.output_path)}\\): a drop of this file would be skipped$`, 'm'))

    // One changed byte: a miss. By name and size, the renamed copy is a miss too.
    const changed = join(base, 'web01.raw')
    copyFileSync(raw, changed)
    execFileSync('dd', ['if=/dev/urandom', `of=${changed}`, 'bs=1', 'count=1', 'seek=4096', 'conv=notrunc', 'status=none'])
    const miss = await runCli(['dedup', 'check', changed, '--output-dir', out, '--hash', 'sha256', '--json'])
    assert.equal(miss.code, 0, miss.stderr)
    assert.equal(miss.json.key_from, 'flag')
    assert.equal(miss.json.duplicate, false)
    assert.equal(miss.json.match, null)
    assert.equal((await runCli(['dedup', 'check', copy, '--output-dir', out, '--hash', 'name-size', '--json'])).json.duplicate, false)
    const byName = await runCli(['dedup', 'check', changed, '--output-dir', out, '--hash', 'name-size', '--json'])
    assert.equal(byName.json.duplicate, true, 'same name and size')
    assert.equal(byName.json.hash, null)
    const absent = await runCli(['dedup', 'check', join(base, 'absent.raw'), '--output-dir', out, '--json'])
    assert.equal(absent.code, 3)
    assert.equal(absent.json.error.code, 'H2K_INPUT_NOT_FOUND')

    // Aged records (as an older daemon would have left them) for purge.
    const db = new Database(join(out, '.daemon', 'jobs.db'))
    const insert = db.prepare('INSERT INTO processed_files (filename, file_size, file_hash, processed_at, job_id, output_path) VALUES (?, ?, ?, ?, NULL, NULL)')
    const oldest = daysAgo(120).toISOString()
    insert.run('old-a.vmdk', 1000, 'a'.repeat(32), oldest)
    insert.run('old-b.vmdk', 3000, null, daysAgo(95).toISOString())
    insert.run('recent.vmdk', 2000, null, daysAgo(10).toISOString())
    db.close()

    const stats = await runCli(['dedup', 'stats', '--config', config, '--json'])
    assert.equal(stats.code, 0, stats.stderr)
    assert.equal(stats.json.rows, 4)
    assert.equal(stats.json.distinct_files, 4)
    assert.equal(stats.json.total_bytes, statSync(raw).size + 6000)
    assert.deepEqual(stats.json.by_key, {md5: 1, 'name-size': 2, sha256: 1})
    assert.equal(stats.json.oldest, oldest)
    assert.equal(stats.json.newest, hit.json.match.processed_at)
    assert.ok(stats.json.db_size.db > 0)

    const dry = await runCli(['dedup', 'purge', '--older-than', '90d', '--dry-run', '--output-dir', out, '--json'])
    assert.equal(dry.code, 0, dry.stderr)
    assert.deepEqual(dry.json.files.map((f: {filename: string}) => f.filename), ['old-a.vmdk', 'old-b.vmdk'])
    assert.equal(dry.json.purged, 0)
    assert.equal((await runCli(['dedup', 'stats', '--output-dir', out, '--json'])).json.rows, 4, 'a dry run deletes nothing')
    const purged = await runCli(['dedup', 'purge', '--older-than', '90d', '--output-dir', out])
    assert.equal(purged.code, 0, purged.stderr)
    assert.match(purged.stdout, /^Deleted 2 processed-file record\(s\) older than 90d /m)
    const left = await runCli(['dedup', 'list', '--output-dir', out, '--json'])
    assert.deepEqual(left.json.files.map((f: {filename: string}) => f.filename).sort(), ['recent.vmdk', 'web01.raw'])

    // vacuum with the daemon still running: the WAL is folded in and truncated.
    const vacuum = await runCli(['dedup', 'vacuum', '--config', config, '--json'])
    assert.equal(vacuum.code, 0, vacuum.stderr)
    assert.equal(vacuum.json.path, join(out, '.daemon', 'jobs.db'))
    assert.ok(vacuum.json.before.total > 0)
    assert.equal(vacuum.json.after.wal, 0)
    assert.equal(vacuum.json.after.total, statSync(join(out, '.daemon', 'jobs.db')).size)
    assert.equal(vacuum.json.reclaimed, vacuum.json.before.total - vacuum.json.after.total)
    // The daemon still works on the vacuumed store: a duplicate drop is skipped.
    execFileSync('cp', ['--sparse=always', raw, join(watch, 'web01-again.raw')])
    await until('the copy skipped as a duplicate', () => jobOf(out, 'web01-again.raw', 'duplicate'), 30_000, d)
    const forgotten = await runCli(['dedup', 'forget', 'web01.raw', '--output-dir', out, '--json'])
    assert.equal(forgotten.json.forgotten, 1)
    assert.equal((await runCli(['dedup', 'check', copy, '--config', config, '--json'])).json.duplicate, false)
    d.child.kill('SIGTERM')
    assert.equal(await d.exited, 0)
  })
})
