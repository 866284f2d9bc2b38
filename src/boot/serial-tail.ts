import {type FileHandle, open} from 'node:fs/promises'
import {StringDecoder} from 'node:string_decoder'

const READ_CHUNK = 64 * 1024
/** A console line longer than this is cut (keeping its end); a guest that never prints a newline cannot grow memory. */
const MAX_LINE = 4096

/** Terminal control sequences (colours, cursor moves, resets) that firmware, systemd and getty write to the console. */
const ANSI = /\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()*+][0-~]|[@-~])/g
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/g

/** A console line as a person would read it on the terminal: no escape sequences, only what the last carriage return left. */
export function cleanConsoleLine(raw: string): string {
  const segments = raw.replace(/\r+$/, '').split('\r')
  const visible = segments.findLast((segment) => segment.length > 0) ?? ''
  return visible.replace(ANSI, '').replace(CONTROL, '').trimEnd()
}

/**
 * Follows a growing serial log file with bounded memory: every new complete line is handed out once (to be
 * judged), the unfinished last line is exposed separately (prompts have no newline), and only the last
 * `keepLines` lines are remembered for the report.
 */
export class SerialTail {
  private handle: FileHandle | undefined
  private offset = 0
  private partial = ''
  private readonly decoder = new StringDecoder('utf8')
  private readonly kept: string[] = []
  private readonly buffer = Buffer.alloc(READ_CHUNK)

  constructor(
    private readonly path: string,
    private readonly keepLines = 30,
  ) {}

  /** Read what was appended since the last call, handing each new complete line (cleaned) to `onLine`. */
  async poll(onLine: (line: string) => void): Promise<void> {
    if (!this.handle) {
      try {
        this.handle = await open(this.path, 'r')
      } catch (error) {
        // qemu creates the file when it starts; until then there is simply nothing to read.
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
        throw error
      }
    }
    for (;;) {
      const {bytesRead} = await this.handle.read(this.buffer, 0, READ_CHUNK, this.offset)
      if (bytesRead === 0) break
      this.offset += bytesRead
      this.append(this.decoder.write(this.buffer.subarray(0, bytesRead)), onLine)
    }
  }

  /** The unfinished last line (e.g. a login prompt), cleaned; empty when the output ends with a newline. */
  get pendingLine(): string {
    return cleanConsoleLine(this.partial)
  }

  /** The last `keepLines` lines, including the unfinished one. */
  get lines(): string[] {
    const pending = this.pendingLine
    return pending ? [...this.kept, pending].slice(-this.keepLines) : [...this.kept]
  }

  /** The last line with something on it, for progress display. */
  get lastLine(): string | undefined {
    return this.pendingLine || this.kept.at(-1)
  }

  async close(): Promise<void> {
    await this.handle?.close()
    this.handle = undefined
  }

  private append(text: string, onLine: (line: string) => void): void {
    const pieces = (this.partial + text).split('\n')
    this.partial = (pieces.pop() ?? '').slice(-MAX_LINE)
    for (const piece of pieces) {
      const line = cleanConsoleLine(piece.slice(-MAX_LINE))
      onLine(line)
      if (line.length === 0) continue
      this.kept.push(line)
      if (this.kept.length > this.keepLines) this.kept.shift()
    }
  }
}
