import {createConnection, createServer, type Server, type Socket} from 'node:net'

/** How a proxy cuts its clients off: `reset` closes every connection (RST) and refuses new ones; `blackhole` keeps them open and drops every byte both ways, and accepts new ones that never answer. */
export type SeverMode = 'reset' | 'blackhole'

/**
 * A loopback TCP proxy in front of a server (a PostgreSQL cluster's port): one node's road to the store,
 * which a test can cut (`sever`) and mend (`heal`) to partition that node while the others keep theirs.
 * A real network partition shows both faces: a peer that resets, or one that silently drops packets.
 */
export class TcpProxy {
  private mode: SeverMode | undefined
  private readonly pairs = new Set<{client: Socket; upstream?: Socket}>()

  private constructor(
    private readonly server: Server,
    /** The loopback port clients connect to. */
    readonly port: number,
  ) {}

  static async start(target: {host: string; port: number}): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined
    const server = createServer((client) => proxy?.accept(client, target))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    const address = server.address()
    proxy = new TcpProxy(server, typeof address === 'object' && address ? address.port : 0)
    return proxy
  }

  /** Connections open now (client side), for a test that checks a severed node stopped reconnecting. */
  get connections(): number {
    return this.pairs.size
  }

  /** Cut every connection, the open ones and those still to come, until heal(). */
  sever(mode: SeverMode): void {
    this.mode = mode
    if (mode === 'reset') {
      for (const pair of this.pairs) this.drop(pair)
    }
  }

  /** Let new connections through again (connections severed by blackhole stay dead: the peer has given up on them, or will). */
  heal(): void {
    this.mode = undefined
    for (const pair of this.pairs) {
      if (pair.client.isPaused()) this.drop(pair)
    }
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) this.drop(pair)
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private accept(client: Socket, target: {host: string; port: number}): void {
    const pair: {client: Socket; upstream?: Socket} = {client}
    this.pairs.add(pair)
    client.on('error', () => this.drop(pair))
    client.on('close', () => this.drop(pair))
    if (this.mode === 'reset') {
      this.drop(pair)
      return
    }
    if (this.mode === 'blackhole') {
      client.pause()
      return
    }
    const upstream = createConnection(target)
    pair.upstream = upstream
    upstream.on('error', () => this.drop(pair))
    upstream.on('close', () => this.drop(pair))
    client.on('data', (chunk) => {
      if (this.mode === undefined) upstream.write(chunk)
      else if (this.mode === 'blackhole') client.pause()
    })
    upstream.on('data', (chunk) => {
      if (this.mode === undefined) client.write(chunk)
      else if (this.mode === 'blackhole') upstream.pause()
    })
  }

  private drop(pair: {client: Socket; upstream?: Socket}): void {
    if (!this.pairs.delete(pair)) return
    pair.client.resetAndDestroy()
    pair.upstream?.destroy()
  }
}
