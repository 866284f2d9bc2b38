/**
 * What the worker is executing, in memory the supervisor can read even while the worker is stuck in a
 * synchronous loop: an exec counter, a busy flag and a copy of the current input.
 */
const HEADER = 16

export class ExecSlot {
  private readonly words: Int32Array
  private readonly bytes: Uint8Array

  constructor(readonly shared: SharedArrayBuffer) {
    this.words = new Int32Array(shared, 0, 4)
    this.bytes = new Uint8Array(shared, HEADER)
  }

  static create(maxLength: number): ExecSlot {
    return new ExecSlot(new SharedArrayBuffer(HEADER + maxLength))
  }

  begin(input: Buffer): void {
    const length = Math.min(input.length, this.bytes.length)
    this.bytes.set(input.subarray(0, length))
    Atomics.store(this.words, 2, length)
    Atomics.store(this.words, 1, 1)
  }

  end(): void {
    Atomics.store(this.words, 1, 0)
    Atomics.add(this.words, 0, 1)
  }

  get execs(): number {
    return Atomics.load(this.words, 0)
  }

  get busy(): boolean {
    return Atomics.load(this.words, 1) === 1
  }

  /** The input being executed (or last executed). */
  current(): Buffer {
    return Buffer.from(this.bytes.slice(0, Atomics.load(this.words, 2)))
  }
}
