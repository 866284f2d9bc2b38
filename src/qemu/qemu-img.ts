import {writeFile} from 'node:fs/promises'

import {
  type BlockdevSpec,
  type Compression,
  H2KError,
  type ImageInfo,
  type OutputFormat,
  type Phase,
  qemuFilename,
  type ResourceLimits,
  type SandboxView,
} from '@hyper2kvm/plugin-api'
import {INSPECT_LIMITS, runTool} from '../exec/run-tool.js'
import {specView} from '../sandbox/sandbox-view.js'
import {ConvertProgressParser} from './convert-progress.js'

interface ToolCall {
  signal?: AbortSignal
  phase?: Phase
  stage?: string
  /**
   * Run qemu-img in the bubblewrap sandbox (default): it sees only the files its specs name (and what it
   * writes). false only for a job run with --no-sandbox (`job.sandbox`).
   */
  sandbox?: boolean
  /**
   * Host files the specs reach through image metadata rather than by name (a sanitized VMDK descriptor's
   * extents): the disk's SourceDisk.files, which its loader resolved and validated. Visible read-only.
   */
  files?: readonly string[]
}

/** The runTool sandbox option of a call that reads `specs` and writes `writable`. */
function sandboxFor(call: ToolCall, specs: readonly BlockdevSpec[], writable: readonly string[] = []): SandboxView | false {
  return call.sandbox === false ? false : specView(specs, writable, call.files)
}

/** The runTool options of a call, without our own `sandbox` and `files` (runTool's sandbox is a view). */
function toolCall({files: _files, sandbox: _sandbox, ...call}: ToolCall): Omit<ToolCall, 'sandbox' | 'files'> {
  return call
}

/** qemu-img messages that mean "this image is damaged", not "qemu-img broke". */
const CORRUPTION = /invalid|corrupt|truncat|beyond (the )?end|after (the )?(image )?end|end of file|could not read|input\/output error|bad (magic|header|footer)|unsupported|not in .* format|image is too|does not match|wrong|footer|L[12] table/i

function inputProblem(error: H2KError, what: string): H2KError {
  if (error.code !== 'H2K_TOOL_FAILED') return error
  const stderr = String(error.details.stderr ?? '')
  const code = /unsupported|not supported/i.test(stderr) ? 'H2K_INPUT_UNSUPPORTED' : CORRUPTION.test(stderr) ? 'H2K_INPUT_CORRUPT' : 'H2K_TOOL_FAILED'
  return new H2KError(code, `${what}: ${stderr || error.message}`, {cause: error, details: error.details, phase: error.phase, stage: error.stage})
}

/** `qemu-img info` of an untrusted image, under address-space and CPU limits, format stated explicitly. */
export async function imageInfo(spec: BlockdevSpec, call: ToolCall & {limits?: ResourceLimits} = {}): Promise<ImageInfo> {
  try {
    const {stdout} = await runTool('qemu-img', ['info', '--output=json', qemuFilename(spec)], {
      ...toolCall(call),
      limits: call.limits ?? INSPECT_LIMITS,
      sandbox: sandboxFor(call, [spec]),
    })
    return JSON.parse(stdout) as ImageInfo
  } catch (error) {
    throw error instanceof H2KError ? inputProblem(error, `qemu-img cannot read the ${spec.driver} image`) : error
  }
}

export interface CheckResult {
  supported: boolean
  corruptions: number
  leaks: number
  checkErrors: number
  /** Bytes of image end offset, when reported. */
  imageEndOffset?: number
}

/** `qemu-img check`: 0 clean, 2 corrupt, 3 leaks only, 63 = the format has no checker. */
export async function checkImage(spec: BlockdevSpec, call: ToolCall & {limits?: ResourceLimits} = {}): Promise<CheckResult> {
  let result
  try {
    result = await runTool('qemu-img', ['check', '--output=json', qemuFilename(spec)], {...toolCall(call), acceptExitCodes: [2, 3, 63], sandbox: sandboxFor(call, [spec])})
  } catch (error) {
    throw error instanceof H2KError ? inputProblem(error, `qemu-img check cannot read the ${spec.driver} image`) : error
  }
  if (result.exitCode === 63) return {checkErrors: 0, corruptions: 0, leaks: 0, supported: false}
  const parsed = JSON.parse(result.stdout || '{}') as Record<string, number>
  return {
    checkErrors: parsed['check-errors'] ?? 0,
    corruptions: parsed.corruptions ?? 0,
    imageEndOffset: parsed['image-end-offset'],
    leaks: parsed.leaks ?? 0,
    supported: true,
  }
}

/** `qemu-img compare` (non-strict: unallocated reads as zeros): true when the guest-visible contents match. */
export async function compareImages(a: BlockdevSpec, b: BlockdevSpec, call: ToolCall = {}): Promise<{identical: boolean; detail: string}> {
  const result = await runTool('qemu-img', ['compare', qemuFilename(a), qemuFilename(b)], {...toolCall(call), acceptExitCodes: [1], sandbox: sandboxFor(call, [a, b])})
  return {detail: (result.stdout + result.stderr).trim(), identical: result.exitCode === 0}
}

export interface ConvertRequest {
  source: BlockdevSpec
  destination: string
  format: OutputFormat
  compress: boolean
  compression: Compression
  /** Parallel coroutines (-m). */
  coroutines?: number
  onProgress?: (percent: number) => void
}

/** The qemu-img convert argument list for a request; the benchmark runs exactly these arguments bare. */
export function convertArgs(request: ConvertRequest): string[] {
  const args = ['convert', '-p', '-m', String(request.coroutines ?? 16), '-O', request.format]
  if (request.compress) {
    // Compressed clusters must be written in order, so -W (out-of-order writes) is only for plain output.
    args.push('-c', '-o', `compression_type=${request.compression}`)
  } else {
    args.push('-W')
  }
  args.push(qemuFilename(request.source), request.destination)
  return args
}

/**
 * One `qemu-img convert`, progress parsed from `-p`. Sandboxed, it can write only its destination: the
 * file is created here (as qemu-img would, 0644 before the umask) and bound read-write, so nothing else of
 * the output directory is visible to it.
 */
export async function convertImage(request: ConvertRequest, call: ToolCall = {}): Promise<void> {
  const parser = new ConvertProgressParser()
  try {
    if (call.sandbox !== false) await writeFile(request.destination, '', {mode: 0o644})
    await runTool('qemu-img', convertArgs(request), {
      ...toolCall(call),
      sandbox: sandboxFor(call, [request.source], [request.destination]),
      onStdout: (chunk) => {
        for (const percent of parser.push(chunk)) request.onProgress?.(percent)
      },
    })
  } catch (error) {
    if (error instanceof H2KError && error.code === 'H2K_TOOL_FAILED') {
      const stderr = String(error.details.stderr ?? '')
      if (/no space left/i.test(stderr)) throw new H2KError('H2K_NO_SPACE', `No space left on device while writing ${request.destination}.`, {cause: error, details: error.details})
      const mapped = inputProblem(error, 'qemu-img convert could not read the input')
      throw mapped.code === 'H2K_TOOL_FAILED'
        ? new H2KError('H2K_CONVERT_FAILED', `qemu-img convert failed: ${stderr || error.message}`, {cause: error, details: error.details})
        : mapped
    }
    throw error
  }
}
