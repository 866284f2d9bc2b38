#!/usr/bin/env node
// bench/pipeline: hyper2kvm's full pipeline (inspect + fix + convert, as `convert --accel tcg` runs it) vs
// Debian's virt-v2v 2.2 (`-i disk ... -o local -of qcow2`) on the cached VMware-style Debian 12 guest of
// the e2e tests (3 GiB raw, root=/dev/sda1, no virtio in the initramfs), both under TCG, several runs each,
// interleaved. Prints median wall times, the ratio ours/virt-v2v (goal <= 0.5) and where our time goes
// (median per stage). Then boots one output of each on virtio once: virt-v2v regenerates grub.cfg inside
// its appliance, where the disk is /dev/sda, so its result keeps root=/dev/sda1 (printed from its grub.cfg).
// The guest is built (or reused) by test/e2e/guest/build-guest.sh in $H2K_E2E_CACHE (default
// /var/cache/hyper2kvm-test/guest) and only read. Outputs go to $H2K_BENCH_CACHE/pipeline (default
// .cache/bench/pipeline) and are removed at the end unless H2K_BENCH_KEEP=1.
// virt-v2v is a bench-only dependency, installed with apt-get when missing (with nbdkit and libnbd-bin:
// Debian's virt-v2v only depends on their libraries, and `-i disk` needs nbdkit, the copy nbdcopy/nbdinfo).
// Other jobs on the machine distort TCG timings, so every timed run (and boot) first waits until no other
// qemu-system-x86_64 is running, and a run during which one started anyway is redone once.
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeSync} from 'node:fs'
import {once} from 'node:events'
import {join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = resolve(fileURLToPath(new URL('..', import.meta.url)))
const guestCache = resolve(process.env.H2K_E2E_CACHE ?? '/var/cache/hyper2kvm-test/guest')
const cache = resolve(process.env.H2K_BENCH_CACHE ?? join(root, '.cache/bench'))
const work = join(cache, 'pipeline')
const runs = Number(process.env.H2K_BENCH_RUNS ?? 3)
const keep = process.env.H2K_BENCH_KEEP === '1'
const MiB = 1024 * 1024
const cli = join(root, 'bin/run.js')
const guestfsEnv = {...process.env, LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg'}
const {bootCheck} = await import(join(root, 'dist/boot/boot-check.js'))

const onPath = (tool) => spawnSync('sh', ['-c', 'command -v "$0"', tool], {stdio: 'ignore'}).status === 0

function ensureVirtV2v() {
  // virt-v2v itself, nbdkit for `-i disk`, nbdcopy/nbdinfo (libnbd-bin) for the copy.
  const needed = [['virt-v2v', 'virt-v2v'], ['nbdkit', 'nbdkit'], ['nbdcopy', 'libnbd-bin'], ['nbdinfo', 'libnbd-bin']]
  const packages = [...new Set(needed.filter(([tool]) => !onPath(tool)).map(([, pkg]) => pkg))]
  if (packages.length === 0) return
  console.log(`installing bench-only dependencies: apt-get install -y --no-install-recommends ${packages.join(' ')}`)
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], {env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}, stdio: ['ignore', 'ignore', 'inherit']})
}

function ensureGuest() {
  execFileSync('bash', [join(root, 'test/e2e/guest/build-guest.sh'), guestCache], {stdio: ['ignore', 'inherit', 'inherit']})
  const raw = join(guestCache, 'debian12-vmware.raw')
  if (!existsSync(raw)) throw new Error(`build-guest.sh left no ${raw}`)
  return raw
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms))

function parentOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return 0
  }
}

function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  } catch {
    return ''
  }
}

/**
 * qemu-system-x86_64 processes of other jobs. Ours descend from `own` (our child: virt-v2v's appliance) or
 * from a process working in our output directory (hyper2kvm's `guestfish --listen` daemonizes, so its
 * appliance is reparented to init).
 */
function foreignQemu(own = process.pid) {
  const pids = spawnSync('pgrep', ['-f', 'qemu-system-x86_64'], {encoding: 'utf8'}).stdout.trim().split('\n').filter(Boolean).map(Number)
  return pids.filter((pid) => {
    for (let p = pid; p > 1; p = parentOf(p)) if (p === own || p === process.pid || commandLine(p).includes(work)) return false
    return true
  })
}

/** How long to wait for other qemu processes to end before a run (`H2K_BENCH_QUIET_WAIT` seconds, default 1200). */
const quietWaitMs = Number(process.env.H2K_BENCH_QUIET_WAIT ?? 1200) * 1000

/** Wait (polling every 5 s, at most quietWaitMs) until no other qemu-system-x86_64 runs, so other jobs do not share the 2 cores. */
async function waitForIdleQemu(what) {
  const start = Date.now()
  let pids = foreignQemu()
  if (pids.length === 0) return
  process.stdout.write(`  waiting before ${what}: qemu-system-x86_64 running (pid ${pids.join(', ')}) ...`)
  while (pids.length > 0 && Date.now() - start < quietWaitMs) {
    await sleep(5000)
    pids = foreignQemu()
  }
  const waited = ((Date.now() - start) / 1000).toFixed(0)
  console.log(pids.length === 0 ? ` waited ${waited} s` : ` still busy after ${waited} s, measuring anyway (figures may be distorted)`)
}

/** Each run starts from an empty output directory with no dirty pages left by the previous one. */
function fresh(dir) {
  rmSync(dir, {force: true, recursive: true})
  mkdirSync(dir, {recursive: true})
  spawnSync('sync')
}

/**
 * Run a command and time it. Every 5 s, look for a qemu another job started meanwhile (the wait before the
 * run cannot stop one from starting later): `contended` is how many seconds one was seen running alongside.
 */
async function timed(command, args, options, logFile) {
  const log = openSync(logFile, 'w')
  const start = process.hrtime.bigint()
  const child = spawn(command, args, {env: options.env ?? process.env, stdio: ['ignore', options.capture ? 'pipe' : log, log]})
  let stdout = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk) => (stdout += chunk))
  let contended = 0
  const watch = setInterval(() => {
    if (foreignQemu(child.pid).length > 0) contended += 5
  }, 5000)
  const [code, signal] = await once(child, 'close')
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  clearInterval(watch)
  if (stdout) writeSync(log, stdout)
  closeSync(log)
  if (code !== 0) {
    // `--json` puts the error on stdout: show its message.
    let message = ''
    try {
      message = `: ${JSON.parse(stdout).error.message}`
    } catch {}
    throw new Error(`${command} ${args.join(' ')} failed (exit ${code ?? signal})${message}, log: ${logFile}`)
  }
  return {contended, seconds, stdout}
}

/** A timed run, redone once when another job's qemu ran alongside it; `contended` > 0 if the kept one was shared too. */
async function measured(label, run) {
  for (let attempt = 1; ; attempt++) {
    await waitForIdleQemu(label)
    const result = await run(attempt)
    // H2K_BENCH_QUIET_WAIT=0: measure as the machine is (runs shared with another qemu are flagged, not redone).
    if (result.contended === 0 || attempt === 2 || quietWaitMs === 0) return result
    console.log(`  ${label}: another qemu ran alongside for ~${result.contended} s (${result.seconds.toFixed(1)} s), redoing it once`)
  }
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

async function runOurs(guest, dir, i) {
  return measured(`hyper2kvm run ${i + 1}`, async (attempt) => {
    fresh(dir)
    const {contended, seconds, stdout} = await timed(process.execPath, [cli, 'convert', guest, '--output-dir', dir, '--accel', 'tcg', '--json', '--no-progress'], {capture: true}, join(work, `ours-${i + 1}.${attempt}.log`))
    const result = JSON.parse(stdout)
    return {contended, output: result.outputs[0].path, seconds, stages: result.stages}
  })
}

async function runVirtV2v(guest, dir, i) {
  return measured(`virt-v2v run ${i + 1}`, async (attempt) => {
    fresh(dir)
    const {contended, seconds} = await timed('virt-v2v', ['-i', 'disk', guest, '-o', 'local', '-os', dir, '-of', 'qcow2'], {env: guestfsEnv}, join(work, `v2v-${i + 1}.${attempt}.log`))
    // -o local writes <name>-sda (no extension) plus <name>.xml (libvirt domain).
    const disk = readdirSync(dir).find((f) => !f.endsWith('.xml'))
    if (!disk) throw new Error(`virt-v2v left no disk in ${dir}`)
    return {contended, output: join(dir, disk), seconds}
  })
}

ensureVirtV2v()
const guest = ensureGuest()
const v2vVersion = execFileSync('virt-v2v', ['--version'], {encoding: 'utf8'}).trim()
mkdirSync(work, {recursive: true})
console.log(`guest: ${guest} (${(statSync(guest).blocks * 512 / MiB).toFixed(0)} MiB allocated, ${(statSync(guest).size / MiB).toFixed(0)} MiB virtual), ${v2vVersion}, TCG, ${runs} runs each\n`)

const oursDir = join(work, 'ours')
const v2vDir = join(work, 'v2v')
const ours = []
const v2v = []
let oursOut
let v2vOut
const shared = (run) => (run.contended ? ` (another qemu ran alongside for ~${run.contended} s, even after a retry: distorted)` : '')
for (let i = 0; i < runs; i++) {
  // Alternate which tool goes first, so neither always runs on a cooler (or warmer) page cache.
  const order = i % 2 === 0 ? ['ours', 'v2v'] : ['v2v', 'ours']
  for (const tool of order) {
    if (tool === 'ours') {
      const run = await runOurs(guest, oursDir, i)
      ours.push(run)
      oursOut = run.output
      console.log(`  run ${i + 1}: hyper2kvm ${run.seconds.toFixed(1)} s${shared(run)}`)
    } else {
      const run = await runVirtV2v(guest, v2vDir, i)
      v2v.push(run)
      v2vOut = run.output
      console.log(`  run ${i + 1}: virt-v2v  ${run.seconds.toFixed(1)} s${shared(run)}`)
    }
  }
}

const oursMedian = median(ours.map((r) => r.seconds))
const v2vMedian = median(v2v.map((r) => r.seconds))
const size = (file) => statSync(file).blocks * 512 / MiB
console.log(`\nmedian wall time: hyper2kvm ${oursMedian.toFixed(1)} s (output ${size(oursOut).toFixed(0)} MiB) | virt-v2v ${v2vMedian.toFixed(1)} s (output ${size(v2vOut).toFixed(0)} MiB)`)
console.log(`median ratio, hyper2kvm/virt-v2v: ${(oursMedian / v2vMedian).toFixed(3)} (goal <= 0.5)`)
const distorted = [...ours, ...v2v].filter((run) => run.contended).length
if (distorted > 0) console.log(`(${distorted} of ${ours.length + v2v.length} runs shared the CPUs with another job's qemu)`)

const perStage = new Map()
for (const run of ours) for (const stage of run.stages) perStage.set(stage.id, [...(perStage.get(stage.id) ?? []), stage.duration_ms / 1000])
const stageMedians = [...perStage].map(([id, values]) => ({id, seconds: median(values)})).sort((a, b) => b.seconds - a.seconds)
const inStages = stageMedians.reduce((sum, s) => sum + s.seconds, 0)
console.log(`\nwhere hyper2kvm's time goes (median per stage, % of its median wall time):`)
for (const {id, seconds} of stageMedians) console.log(`  ${id.padEnd(28)} ${seconds.toFixed(2).padStart(7)} s  ${((seconds / oursMedian) * 100).toFixed(1).padStart(5)} %`)
console.log(`  ${'(outside stages: start-up)'.padEnd(28)} ${(oursMedian - inStages).toFixed(2).padStart(7)} s  ${(((oursMedian - inStages) / oursMedian) * 100).toFixed(1).padStart(5)} %`)

// The kernel command lines in virt-v2v's grub.cfg (only `linux` lines: `set root='hd0,msdos1'` is GRUB's own).
const v2vCat = (file) => execFileSync('virt-cat', ['--format=qcow2', '-a', v2vOut, file], {encoding: 'utf8', env: guestfsEnv})
const grubRoots = [...new Set(v2vCat('/boot/grub/grub.cfg').split('\n').filter((l) => /^\s*linux\s/.test(l)).flatMap((l) => [...l.matchAll(/\broot=(\S+)/g)].map((m) => m[1])))]
const fstabRoot = v2vCat('/etc/fstab').split('\n').find((l) => /^\S+\s+\/\s/.test(l))

console.log(`\nboot on virtio-blk (TCG, one output each, timeout 240 s):`)
for (const [label, disk] of [['hyper2kvm', oursOut], ['virt-v2v', v2vOut]]) {
  await waitForIdleQemu(`the ${label} boot`)
  const serialLog = join(cache, `pipeline-boot-${label}.log`)
  const boot = await bootCheck({accel: 'tcg', bus: 'virtio', disks: [{format: 'qcow2', path: disk}], firmware: 'bios', serialLog, timeoutSeconds: 240})
  console.log(`  ${label.padEnd(10)} ${boot.passed ? 'PASSED' : 'FAILED'} (${boot.reason}, ${boot.seconds.toFixed(0)} s)${boot.matchedLine ? `: ${boot.matchedLine.trim()}` : ''}  serial log: ${serialLog}`)
}
console.log(`  virt-v2v grub.cfg kernel root=: ${grubRoots.join(', ') || '(none)'}; its fstab root: ${fstabRoot?.trim() ?? '(none)'}`)

if (keep) console.log(`\noutputs kept in ${work}`)
else rmSync(work, {force: true, recursive: true})
