import type {FileHandle} from 'node:fs/promises'
import type {Readable} from 'node:stream'

import {H2KError} from '../errors/h2k-error.js'
import {readUpTo} from '../fs/read-head.js'

/** Member data is hashed through a buffer of this size: large enough for throughput, small enough to bound memory. */
const CHUNK = 1024 * 1024

/** Trailing bytes after the end-of-archive marker we still drain (tar pads to 10 KiB records), so gzip can check its trailer. */
const TRAILER_DRAIN_LIMIT = 1024 * 1024

export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new H2KError('H2K_CANCELLED', 'Reading the archive was cancelled.', {cause: signal.reason})
}

/** Sequential access to the bytes of a tar, from a file (with seeking) or a stream (without). */
export interface TarByteSource {
  /** Bytes consumed so far: the offset in the tar of the next byte. */
  readonly position: number
  /** The tar's length when known up front (files), so oversized members are refused before reading them. */
  readonly length: number | undefined
  /** Exactly `count` bytes, or fewer only at the end of the input. */
  read(count: number): Promise<Buffer>
  /** Advance `count` bytes, handing the data to `onData` when given; returns how many bytes there were. */
  skip(count: number, onData?: (chunk: Buffer) => void): Promise<number>
  /** Called once the end-of-archive marker is seen. */
  finish(): Promise<void>
}

/** A tar file read with positional reads: skipped member data is never read at all. */
export class FileTarSource implements TarByteSource {
  position = 0
  private readonly buffer = Buffer.alloc(CHUNK)

  constructor(
    private readonly handle: FileHandle,
    readonly length: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  async read(count: number): Promise<Buffer> {
    const out = await readUpTo(this.handle, this.position, Math.min(count, this.length - this.position))
    this.position += out.length
    return out
  }

  async skip(count: number, onData?: (chunk: Buffer) => void): Promise<number> {
    const available = Math.max(Math.min(count, this.length - this.position), 0)
    if (!onData) {
      this.position += available
      return available
    }
    let done = 0
    while (done < available) {
      throwIfCancelled(this.signal)
      const want = Math.min(CHUNK, available - done)
      const {bytesRead} = await this.handle.read(this.buffer, 0, want, this.position)
      if (bytesRead === 0) break
      onData(this.buffer.subarray(0, bytesRead))
      this.position += bytesRead
      done += bytesRead
    }
    return done
  }

  async finish(): Promise<void> {}
}

/**
 * A tar arriving as a stream (e.g. out of gunzip), optionally copied to a file as it is read, so members
 * can afterwards be opened in place at the offsets the scan reports. Memory stays bounded by the stream's
 * chunk size: every chunk is written out (awaiting the write) before the next is pulled.
 */
export class StreamTarSource implements TarByteSource {
  position = 0
  readonly length = undefined
  private readonly chunks: AsyncIterator<unknown>
  private pending: Buffer = Buffer.alloc(0)
  private ended = false

  constructor(
    stream: Readable,
    private readonly copy: FileHandle | undefined,
    private readonly signal: AbortSignal | undefined,
    private readonly describeReadError: (error: unknown) => H2KError,
  ) {
    this.chunks = stream[Symbol.asyncIterator]()
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false
    throwIfCancelled(this.signal)
    let next: IteratorResult<unknown>
    try {
      next = await this.chunks.next()
    } catch (error) {
      throwIfCancelled(this.signal)
      throw this.describeReadError(error)
    }
    if (next.done) {
      this.ended = true
      return false
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array)
    if (this.copy) await writeAll(this.copy, chunk)
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    return true
  }

  async read(count: number): Promise<Buffer> {
    while (this.pending.length < count && (await this.pull()));
    const out = this.pending.subarray(0, count)
    this.pending = this.pending.subarray(out.length)
    this.position += out.length
    return out
  }

  async skip(count: number, onData?: (chunk: Buffer) => void): Promise<number> {
    let done = 0
    while (done < count) {
      if (this.pending.length === 0 && !(await this.pull())) break
      const piece = this.pending.subarray(0, count - done)
      this.pending = this.pending.subarray(piece.length)
      onData?.(piece)
      done += piece.length
      this.position += piece.length
    }
    return done
  }

  async finish(): Promise<void> {
    let drained = 0
    this.pending = Buffer.alloc(0)
    while (drained < TRAILER_DRAIN_LIMIT && (await this.pull())) {
      drained += this.pending.length
      this.pending = Buffer.alloc(0)
    }
    if (!this.ended) await this.chunks.return?.()
  }

  /** Stop reading (after an error): lets the stream be destroyed. */
  async abandon(): Promise<void> {
    if (!this.ended) await this.chunks.return?.().catch(() => undefined)
  }
}

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  let written = 0
  while (written < chunk.length) {
    try {
      const result = await handle.write(chunk, written, chunk.length - written)
      written += result.bytesWritten
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOSPC') throw new H2KError('H2K_NO_SPACE', 'No space left for the decompressed archive in the job directory.', {cause: error})
      throw new H2KError('H2K_OUTPUT_FAILED', `Writing the decompressed archive failed: ${(error as Error).message}`, {cause: error})
    }
  }
}
