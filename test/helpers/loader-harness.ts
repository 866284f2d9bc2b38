import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync, statSync} from 'node:fs'
import {open} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {extname, join, resolve} from 'node:path'

import {runTool} from '../../src/exec/run-tool.js'
import {imageInfo} from '../../src/qemu/qemu-img.js'
import {defaultJobSettings} from '../../src/stages/job-defaults.js'
import {type JobSettings, type LoaderContext, type LoaderStage, type ProbeInput, qemuFilename, type Source} from '@hyper2kvm/plugin-api'

export const DEFAULT_SETTINGS: JobSettings = defaultJobSettings('', '')

/** The ProbeInput the pipeline would build for a path. */
export async function probeInputFor(path: string): Promise<ProbeInput> {
  const absolute = resolve(path)
  const info = statSync(absolute)
  let head = Buffer.alloc(0)
  if (info.isFile()) {
    const handle = await open(absolute, 'r')
    try {
      const buffer = Buffer.alloc(64 * 1024)
      const {bytesRead} = await handle.read(buffer, 0, buffer.length, 0)
      head = buffer.subarray(0, bytesRead)
    } finally {
      await handle.close()
    }
  }
  return {extension: extname(absolute).toLowerCase(), head, isDirectory: info.isDirectory(), path: absolute, size: info.size}
}

/**
 * Run one loader outside the CLI: probe, then run with a minimal real context (real exec, real temp dir).
 * Returns the source and a cleanup for the work dir.
 */
export async function loadWith(
  loader: LoaderStage,
  path: string,
  settings: Partial<JobSettings> = {},
): Promise<{source: Source; claim: NonNullable<Awaited<ReturnType<LoaderStage['probe']>>>; workDir: string; cleanup: () => void}> {
  const input = await probeInputFor(path)
  const claim = await loader.probe(input)
  if (!claim) throw new Error(`${loader.name} does not claim ${path}`)
  const workDir = mkdtempSync(join(tmpdir(), 'h2k-work-'))
  const controller = new AbortController()
  const ctx: LoaderContext = {
    changes: {all: [], record: () => {}},
    claim,
    dryRun: false,
    exec: (file, args, options) => runTool(file, args, {...options, signal: controller.signal}),
    imageInfo: (spec, options) => imageInfo(spec, {files: options?.files, sandbox: settings.sandbox ?? DEFAULT_SETTINGS.sandbox, signal: controller.signal}),
    guest: {
      isOpen: false,
      open: () => Promise.reject(new Error('loaders do not open the guest')),
    },
    input,
    job: {...DEFAULT_SETTINGS, input: path, ...settings},
    jobId: 'test',
    log: {debug: () => {}, info: () => {}, warn: () => {}},
    options: {},
    outputs: [],
    report: () => {},
    signal: controller.signal,
    verification: {},
    warn: () => {},
    workDir,
  }
  const cleanup = () => rmSync(workDir, {force: true, recursive: true})
  try {
    const source = await loader.run(ctx)
    return {claim, cleanup, source, workDir}
  } catch (error) {
    cleanup()
    throw error
  }
}

/** Convert a loaded disk spec to raw with qemu-img, so tests can `qemu-img compare` it with the expected image. */
export function convertSpecToRaw(spec: object, out: string): string {
  execFileSync('qemu-img', ['convert', '-q', '-O', 'raw', qemuFilename(spec as {driver: string}), out])
  return out
}
