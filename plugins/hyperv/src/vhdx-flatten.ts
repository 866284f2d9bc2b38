/**
 * Flattens a Hyper-V differencing disk (.avhdx) onto its parent without writing any image format by hand:
 * qemu-img creates a qcow2 overlay whose backing is the parent (formats stated explicitly), and qemu-io writes
 * the child's own data runs (found by readVhdxLayout) into that overlay. The overlay then reads as
 * parent + child, and the rest of the pipeline treats it like any other source.
 *
 * qemu-io's `write -s FILE OFF LEN` fills its buffer from the START of FILE, so each piece of child data is
 * staged in a small temporary file next to the overlay; pieces are processed in bounded batches, one qemu-io
 * process per batch reading its commands from stdin.
 */
import {readExact} from '@hyper2kvm/plugin-api'
import {mkdtemp, open, rm, writeFile, type FileHandle} from 'node:fs/promises'
import {dirname, join, resolve} from 'node:path'

import {readVhdxLayout, VhdxError, VhdxUnsupportedError, type VhdxRun} from './vhdx-layout.js'

/** qemu blockdev options of an image node, e.g. `{driver: 'vhdx', file: {driver: 'file', filename: '/abs/p.vhdx'}}`. */
export type QemuBlockdevSpec = {driver: string} & Record<string, unknown>

export interface BuildDifferencingOverlayOptions {
  /** The differencing VHDX (.avhdx). */
  child: string
  /**
   * The parent image as qemu blockdev options, format stated (`driver`). Use absolute filenames: the overlay
   * records this spec as its backing file. A parent that is itself differencing is first flattened with this
   * function and then passed as `{driver: 'qcow2', file: {driver: 'file', filename: <its overlay>}}`.
   */
  parentSpec: object
  /** Where to create the qcow2 overlay (replaced if it exists; removed again if flattening fails). */
  overlayPath: string
  signal?: AbortSignal
  /** Called after each batch with the number of guest bytes written so far (data and zero runs). */
  onProgress?: (bytesDone: number) => void
  /**
   * Runs qemu-img and qemu-io: the loader passes `ctx.exec` with a sandbox view (the host runs every tool).
   * `writes` are the paths the tool writes; everything else it reads comes from `parentSpec`.
   */
  run: QemuRunner
}

export type QemuRunner = (tool: 'qemu-img' | 'qemu-io', args: string[], options: {input?: string; cwd?: string; writes: string[]}) => Promise<{stdout: string; stderr: string}>

/** An error that already carries a hyper2kvm code other than "tool failed" (sandbox unavailable, cancelled...). */
function coded(error: unknown): boolean {
  const code = (error as {code?: unknown} | undefined)?.code
  return typeof code === 'string' && code.startsWith('H2K_') && code !== 'H2K_TOOL_FAILED'
}

/** Largest single `write -s` (qemu-io allocates a buffer of this size). */
const MAX_DATA_PIECE = 4 * 1024 * 1024
/** Largest single `write -z`. */
const MAX_ZERO_PIECE = 1024 * 1024 * 1024
/** Bytes of staged data per qemu-io run: bounds the temporary space used next to the overlay. */
const BATCH_DATA_BYTES = 64 * 1024 * 1024
/** Commands per qemu-io run. */
const BATCH_COMMANDS = 4096

export class VhdxFlattenError extends VhdxError {
  constructor(message: string, options?: {path?: string; cause?: unknown}) {
    super('VHDX_FLATTEN_FAILED', message, options)
    this.name = 'VhdxFlattenError'
  }
}

/**
 * Checks the parent spec and returns a copy whose relative `filename`s are made absolute: the overlay records
 * the spec as its backing file, and qemu-io runs in a staging directory.
 */
function absoluteParentSpec(spec: object): QemuBlockdevSpec {
  const driver = (spec as {driver?: unknown}).driver
  if (typeof driver !== 'string' || !/^[a-z0-9_-]+$/i.test(driver)) {
    throw new TypeError('parentSpec must be qemu blockdev options with a format "driver" string')
  }
  const copy = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(copy)
    if (value === null || typeof value !== 'object') return value
    return Object.fromEntries(
      Object.entries(value).map(([key, v]) => [
        key,
        key === 'filename' && typeof v === 'string' && !v.startsWith('json:') ? resolve(v) : copy(v),
      ]),
    )
  }
  return copy(spec) as QemuBlockdevSpec
}

/** Splits runs into qemu-io sized pieces. */
function* pieces(run: VhdxRun): Generator<VhdxRun> {
  const max = run.zero ? MAX_ZERO_PIECE : MAX_DATA_PIECE
  for (let done = 0; done < run.length; done += max) {
    const length = Math.min(max, run.length - done)
    yield run.zero
      ? {guestOffset: run.guestOffset + done, length, zero: true}
      : {guestOffset: run.guestOffset + done, length, fileOffset: run.fileOffset + done}
  }
}

/**
 * Creates `overlayPath`, a qcow2 image backed by `parentSpec`, holding the data of the differencing VHDX `child`:
 * reading the overlay gives the merged disk. The child and the parent are only read.
 */
export async function buildDifferencingOverlay(opts: BuildDifferencingOverlayOptions): Promise<void> {
  const {child, signal} = opts
  const parentSpec = absoluteParentSpec(opts.parentSpec)
  const overlay = resolve(opts.overlayPath)
  signal?.throwIfAborted()

  const layout = await readVhdxLayout(child)
  if (!layout.hasParent) {
    throw new VhdxUnsupportedError(child, 'not-differencing', 'the disk has no parent (HasParent is clear); convert it directly')
  }

  const backing = `json:${JSON.stringify(parentSpec)}`
  // The qcow2 node opened by qemu-io, with its backing stated here rather than taken from the image header.
  const overlayImage = `json:${JSON.stringify({driver: 'qcow2', file: {driver: 'file', filename: overlay}, backing: parentSpec})}`

  const {run} = opts
  const qemu = async (tool: 'qemu-img' | 'qemu-io', args: string[], extra: {input?: string; cwd?: string; writes: string[]}) => {
    try {
      const result = await run(tool, args, extra)
      // qemu-io prints "write failed: ..." per failed command; its exit status is 1 then, but be sure.
      const output = `${result.stdout}\n${result.stderr}`
      if (/\bfailed\b/i.test(output)) throw new Error(output.trim())
    } catch (error) {
      if (signal?.aborted) throw signal.reason ?? error
      if (coded(error)) throw error
      const detail = error instanceof Error ? (error as {stderr?: string}).stderr || error.message : String(error)
      throw new VhdxFlattenError(`${tool} failed while flattening ${child} into ${overlay}: ${detail.trim()}`, {path: child, cause: error})
    }
  }

  let staging: string | undefined
  let childFile: FileHandle | undefined
  try {
    // Created first, so a sandboxed qemu-img can be given exactly this file to write.
    await writeFile(overlay, '')
    await qemu('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', backing, '-F', parentSpec.driver, overlay, String(layout.virtualSize)], {writes: [overlay]})

    staging = await mkdtemp(join(dirname(overlay), '.vhdx-flatten-'))
    childFile = await open(child, 'r')
    let commands: string[] = []
    let staged: string[] = []
    let stagedBytes = 0
    let bytesDone = 0
    let batchBytes = 0
    let serial = 0

    const flush = async () => {
      if (commands.length === 0) return
      // Commands on stdin, staged files named relative to the staging directory (no spaces, no quoting).
      await qemu('qemu-io', ['-f', 'qcow2', overlayImage], {input: `${commands.join('\n')}\n`, cwd: staging, writes: [overlay, staging!]})
      await Promise.all(staged.map((name) => rm(join(staging!, name))))
      bytesDone += batchBytes
      opts.onProgress?.(bytesDone)
      commands = []
      staged = []
      stagedBytes = 0
      batchBytes = 0
    }

    for await (const run of layout.runs) {
      for (const piece of pieces(run)) {
        signal?.throwIfAborted()
        if (piece.zero) {
          commands.push(`write -q -z ${piece.guestOffset} ${piece.length}`)
        } else {
          const data = await readExact(childFile, piece.fileOffset, piece.length, (got) =>
            new VhdxFlattenError(`${child}: unexpected end of file at ${piece.fileOffset + got}`, {path: child}),
          )
          const name = `${serial++}`
          await writeFile(join(staging, name), data)
          staged.push(name)
          commands.push(`write -q -s ${name} ${piece.guestOffset} ${piece.length}`)
          stagedBytes += piece.length
        }
        batchBytes += piece.length
        if (stagedBytes >= BATCH_DATA_BYTES || commands.length >= BATCH_COMMANDS) await flush()
      }
    }
    await flush()
  } catch (error) {
    await rm(overlay, {force: true})
    throw error
  } finally {
    await childFile?.close()
    if (staging) await rm(staging, {force: true, recursive: true})
  }
}
