import {type ChildProcessWithoutNullStreams, spawn} from 'node:child_process'
import {join} from 'node:path'
import {createInterface} from 'node:readline'

import type {SeverMode} from './tcp-proxy.js'

/**
 * TcpProxy's controls, the proxy running in a child process (tcp-proxy-child.ts): the road of a store
 * connection whose owner blocks its own thread (PostgresDb in the test process) stays open meanwhile.
 */
export class RemoteTcpProxy {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    /** The loopback port clients connect to. */
    readonly port: number,
  ) {}

  static async start(target: {host: string; port: number}): Promise<RemoteTcpProxy> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'tcp-proxy-child.ts'), target.host, String(target.port)], {stdio: ['pipe', 'pipe', 'pipe']})
    const lines = createInterface({input: child.stdout})[Symbol.asyncIterator]()
    const first = await lines.next()
    const port = /^port (\d+)$/.exec(first.done === true ? '' : first.value)?.[1]
    if (port === undefined) {
      child.kill()
      throw new Error(`the proxy process did not start (${first.done === true ? 'it ended' : first.value})`)
    }
    return new RemoteTcpProxy(child, lines, Number(port))
  }

  private async command(line: string): Promise<void> {
    this.child.stdin.write(`${line}\n`)
    const reply = await this.lines.next()
    if (reply.done === true || reply.value !== 'ok') throw new Error(`the proxy process refused "${line}": ${reply.done === true ? 'it ended' : reply.value}`)
  }

  sever(mode: SeverMode): Promise<void> {
    return this.command(`sever ${mode}`)
  }

  heal(): Promise<void> {
    return this.command('heal')
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return
    await this.command('close').catch(() => this.child.kill())
  }
}
