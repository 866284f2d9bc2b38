/**
 * A TcpProxy (tcp-proxy.ts) in a process of its own, driven over stdin/stdout by remote-tcp-proxy.ts: for a
 * test whose own thread blocks in store calls (PostgresDb waits synchronously), so an in-process proxy could
 * not move a byte meanwhile. argv: HOST PORT. Prints `port N`, then answers each line (`sever reset`,
 * `sever blackhole`, `heal`, `close`) with `ok`.
 */
import {createInterface} from 'node:readline'

import {TcpProxy} from './tcp-proxy.js'

const proxy = await TcpProxy.start({host: process.argv[2]!, port: Number(process.argv[3])})
process.stdout.write(`port ${proxy.port}\n`)
for await (const line of createInterface({input: process.stdin})) {
  const [command, mode] = line.trim().split(' ')
  if (command === 'sever' && (mode === 'reset' || mode === 'blackhole')) proxy.sever(mode)
  else if (command === 'heal') proxy.heal()
  else if (command === 'close') {
    await proxy.close()
    process.stdout.write('ok\n')
    process.exit(0)
  } else {
    process.stdout.write(`error unknown command ${JSON.stringify(line)}\n`)
    continue
  }
  process.stdout.write('ok\n')
}
await proxy.close()
