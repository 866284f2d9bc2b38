/**
 * Parses the progress `qemu-img convert -p` prints: "    (12.34/100%)" records separated by CR or LF,
 * possibly split across chunks. Yields each new percentage.
 */
export class ConvertProgressParser {
  private pending = ''
  private last = -1

  push(chunk: string): number[] {
    this.pending += chunk
    const records = this.pending.split(/[\r\n]/)
    this.pending = records.pop() ?? ''
    const found: number[] = []
    for (const record of records) {
      const match = /\(\s*(\d+(?:\.\d+)?)\/100%\)/.exec(record)
      if (!match) continue
      const percent = Math.min(100, Number(match[1]))
      if (percent !== this.last) {
        this.last = percent
        found.push(percent)
      }
    }
    return found
  }
}
