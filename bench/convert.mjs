#!/usr/bin/env node
// bench/convert: hyper2kvm convert vs bare `qemu-img convert` with the same flags, on a 2 GiB virtual /
// ~1 GiB allocated streamOptimized VMDK (what vSphere exports), several runs each, interleaved.
// Measured two ways: the pipeline in this process (runJob, as `convert`, `batch` and the daemon call it:
// probe, qemu-img info/check, convert, output check, rename, report) and the CLI as a user runs it (adds
// Node/oclif start-up and plugin loading, a fixed cost). Prints median ratios (goal <= 1.05) and zstd vs
// zlib compressed output (time and size). The pipeline runs its qemu processes in the bubblewrap sandbox
// (the default); the plain case also runs it with --no-sandbox in the same interleave, so the sandbox's
// cost is measured side by side, plus the start-up of one sandboxed vs unsandboxed qemu-img.
// The fixture is cached in $H2K_BENCH_CACHE (default .cache/bench) and rebuilt when absent.
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = resolve(fileURLToPath(new URL('..', import.meta.url)))
const cache = resolve(process.env.H2K_BENCH_CACHE ?? join(root, '.cache/bench'))
const runs = Number(process.env.H2K_BENCH_RUNS ?? 3)
const MiB = 1024 * 1024
const cli = join(root, 'bin/run.js')
const {convertArgs} = await import(join(root, 'dist/qemu/qemu-img.js'))
const {formatNode} = await import('@hyper2kvm/plugin-api')
const {runJob} = await import(join(root, 'dist/stages/run-job.js'))
const {StageRegistry} = await import(join(root, 'dist/stages/stage-registry.js'))
const {defaultJobSettings} = await import(join(root, 'dist/stages/job-defaults.js'))
const {runTool} = await import(join(root, 'dist/exec/run-tool.js'))

/** The same registrations the oclif hook collects, imported directly. */
async function inProcessRegistry() {
  const contributions = []
  const sources = [['hyper2kvm', 'dist/hooks/register-core.js'], ...['vmware', 'ovf', 'hyperv', 'generic', 'aws'].map((n) => [`@hyper2kvm/plugin-${n}`, `plugins/${n}/dist/register.js`])]
  for (const [name, file] of sources) {
    const hook = (await import(join(root, file))).default
    contributions.push({plugin: {name, version: 'bench'}, result: await hook()})
  }
  return StageRegistry.fromContributions(contributions)
}
const registry = await inProcessRegistry()

function buildFixture() {
  const vmdk = join(cache, 'bench-2g.vmdk')
  if (existsSync(vmdk)) return vmdk
  mkdirSync(cache, {recursive: true})
  const raw = join(cache, 'bench-2g.raw')
  console.error('building the fixture (2 GiB virtual, ~1 GiB allocated) ...')
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', raw, '2G'])
  // 512 MiB of incompressible data and 512 MiB of compressible, OS-like data (repeated text blocks), with holes.
  execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', 'count=512', 'seek=64', 'conv=notrunc', 'status=none'])
  const text = Buffer.from(Array.from({length: 4096}, (_, i) => `line ${i} /usr/lib/x86_64-linux-gnu/libexample.so.${i % 97} ok\n`).join(''))
  const block = Buffer.alloc(MiB)
  for (let o = 0; o < MiB; o += text.length) text.copy(block, o, 0, Math.min(text.length, MiB - o))
  const blockFile = join(cache, 'block.bin')
  writeFileSync(blockFile, block)
  execFileSync('sh', ['-c', 'for i in $(seq 1 512); do cat "$0"; done | dd of="$1" bs=1M seek=1024 conv=notrunc status=none iflag=fullblock', blockFile, raw])
  rmSync(blockFile)
  execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, vmdk])
  rmSync(raw)
  return vmdk
}

async function timedJob(settings) {
  const start = process.hrtime.bigint()
  await runJob(settings, {registry})
  return Number(process.hrtime.bigint() - start) / 1e9
}

function timed(command, args) {
  const start = process.hrtime.bigint()
  const result = spawnSync(command, args, {encoding: 'utf8'})
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`)
  return seconds
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

const vmdk = buildFixture()
const work = join(cache, 'out')
const allocated = statSync(vmdk).size
console.log(`fixture: ${vmdk} (${(allocated / MiB).toFixed(0)} MiB on disk, 2048 MiB virtual), ${runs} runs each\n`)

async function compareRuns(label, flags, request, {unsandboxed = false} = {}) {
  const inProcess = []
  const noSandbox = []
  const viaCli = []
  const bare = []
  const sizes = {bare: 0}
  const size = (file) => statSync(join(work, file)).blocks * 512
  const settings = {...defaultJobSettings(vmdk, work), compress: request.compress, compression: request.compression, fix: {...defaultJobSettings(vmdk, work).fix, enabled: false}, format: request.format}
  for (let i = 0; i < runs; i++) {
    // Each run starts from an empty output directory with no dirty pages left by the previous one, so
    // write-back of an earlier run never lands on a later one.
    const fresh = () => {
      rmSync(work, {force: true, recursive: true})
      mkdirSync(work, {recursive: true})
      spawnSync('sync')
    }
    fresh()
    bare.push(timed('qemu-img', convertArgs({...request, destination: join(work, 'bare.qcow2'), source: formatNode('vmdk', vmdk)})))
    const bareSize = size('bare.qcow2')
    fresh()
    inProcess.push(await timedJob(settings))
    fresh()
    if (unsandboxed) {
      noSandbox.push(await timedJob({...settings, sandbox: false}))
      fresh()
    }
    viaCli.push(timed(process.execPath, [cli, 'convert', vmdk, '--output-dir', work, '--no-fix', '--no-progress', '--json', ...flags]))
    sizes.bare = bareSize
  }
  const result = {bare: median(bare), cli: median(viaCli), noSandbox: unsandboxed ? median(noSandbox) : undefined, ours: median(inProcess), size: size('bench-2g.qcow2')}
  const bareRatio = result.noSandbox === undefined ? '' : ` | --no-sandbox ${result.noSandbox.toFixed(2)} s, ratio ${(result.noSandbox / result.bare).toFixed(3)}`
  console.log(
    `${label.padEnd(14)} qemu-img ${result.bare.toFixed(2)} s | pipeline ${result.ours.toFixed(2)} s, ratio ${(result.ours / result.bare).toFixed(3)}${bareRatio} | CLI ${result.cli.toFixed(2)} s, ratio ${(result.cli / result.bare).toFixed(3)} | output ${(result.size / MiB).toFixed(0)} MiB (bare ${(sizes.bare / MiB).toFixed(0)} MiB)`,
  )
  return result
}

/** Median wall time of one short qemu-img run (`info` of the fixture), sandboxed or not: the per-process cost. */
async function toolStartup(sandboxed) {
  const times = []
  for (let i = 0; i < 20; i++) {
    const start = process.hrtime.bigint()
    await runTool('qemu-img', ['info', '-f', 'vmdk', vmdk], {sandbox: sandboxed ? {readOnly: [vmdk], readWrite: []} : false})
    times.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  return median(times)
}

const plain = await compareRuns('qcow2', [], {compress: false, compression: 'zstd', format: 'qcow2'}, {unsandboxed: true})
const zstd = await compareRuns('qcow2 + zstd', ['--compression', 'zstd'], {compress: true, compression: 'zstd', format: 'qcow2'})
const zlib = await compareRuns('qcow2 + zlib', ['--compression', 'zlib'], {compress: true, compression: 'zlib', format: 'qcow2'})
const startup = median(Array.from({length: 5}, () => timed(process.execPath, [cli, '--version'])))
console.log(`\nmedian ratio, pipeline/qemu-img (plain qcow2): ${(plain.ours / plain.bare).toFixed(3)} (goal <= 1.05)`)
console.log(`sandbox cost (plain qcow2): pipeline ${plain.ours.toFixed(2)} s sandboxed vs ${plain.noSandbox.toFixed(2)} s --no-sandbox (${(((plain.ours - plain.noSandbox) / plain.noSandbox) * 100).toFixed(1)} %)`)
const [caged, bareTool] = [await toolStartup(true), await toolStartup(false)]
console.log(`one qemu-img info: ${caged.toFixed(1)} ms sandboxed vs ${bareTool.toFixed(1)} ms unsandboxed (+${(caged - bareTool).toFixed(1)} ms per qemu process)`)
console.log(`median ratio, CLI/qemu-img (plain qcow2): ${(plain.cli / plain.bare).toFixed(3)}; CLI start-up alone: ${startup.toFixed(2)} s`)
console.log(`zstd vs zlib: time ${zstd.ours.toFixed(2)} s vs ${zlib.ours.toFixed(2)} s (zlib ${(zlib.ours / zstd.ours).toFixed(1)}x slower), size ${(zstd.size / MiB).toFixed(0)} MiB vs ${(zlib.size / MiB).toFixed(0)} MiB`)
rmSync(work, {force: true, recursive: true})
