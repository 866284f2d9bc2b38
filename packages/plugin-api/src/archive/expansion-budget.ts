import {stat, statfs} from 'node:fs/promises'

/** Free space a decompression always leaves on the target filesystem (other jobs, the outputs). */
export const DECOMPRESS_RESERVE_BYTES = 1024 ** 3
/** Room is reserved in steps of this size (or what is left), so a busy decompression asks statfs rarely. */
const STEP_BYTES = 16 * 1024 ** 2

/** Per filesystem (st_dev): bytes reserved by running decompressions and not yet written. */
const outstanding = new Map<number, number>()

/**
 * One decompression's share of the free space of the filesystem it writes to. The budget is shared by
 * every decompression of this process: a reservation counts against the free space until its bytes are
 * written (then statfs sees them), so N archives expanding at once together leave `reserveBytes` free,
 * instead of each computing "free − reserve" for itself and all of them filling the disk.
 */
export class ExpansionLease {
  private granted = 0
  private written = 0
  private released = false

  private constructor(
    private readonly dir: string,
    private readonly device: number,
    private readonly reserveBytes: number,
    private readonly maxBytes: number,
  ) {}

  /** A lease for writing into `dir` (its filesystem); nothing is reserved until take(). */
  static async open(dir: string, options: {reserveBytes?: number; maxBytes?: number} = {}): Promise<ExpansionLease> {
    const {dev} = await stat(dir)
    return new ExpansionLease(dir, dev, options.reserveBytes ?? DECOMPRESS_RESERVE_BYTES, options.maxBytes ?? Number.POSITIVE_INFINITY)
  }

  /** Bytes this lease may write in all so far (what it was granted). */
  get limit(): number {
    return this.granted
  }

  /** Account for `bytes` about to be written; false (nothing taken) when the shared budget cannot hold them. */
  async take(bytes: number): Promise<boolean> {
    if (this.released) return false
    const need = this.written + bytes - this.granted
    if (need > 0) {
      if (this.written + bytes > this.maxBytes) return false
      const fs = await statfs(this.dir)
      // Synchronous from here: concurrent leases see each other's grants.
      const room = fs.bavail * fs.bsize - this.reserveBytes - (outstanding.get(this.device) ?? 0)
      const grant = Math.min(Math.max(need, STEP_BYTES), room, this.maxBytes - this.granted)
      if (this.released || grant < need) return false
      this.granted += grant
      this.adjust(grant)
    }
    this.written += bytes
    // Written bytes leave the reservation: from now on statfs counts them.
    this.adjust(-bytes)
    return true
  }

  /** Give back what was reserved and not written (done, failed or cancelled); idempotent. */
  release(): void {
    if (this.released) return
    this.released = true
    this.adjust(-(this.granted - this.written))
  }

  private adjust(delta: number): void {
    const next = (outstanding.get(this.device) ?? 0) + delta
    if (next <= 0) outstanding.delete(this.device)
    else outstanding.set(this.device, next)
  }
}
