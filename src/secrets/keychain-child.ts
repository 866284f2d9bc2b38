/**
 * The keychain calls, in a child process of their own: a Secret Service that blocks (a locked collection
 * waiting for a prompt, a bus that never answers) can then be killed instead of hanging the daemon or CLI.
 * Reads one JSON request on stdin (values travel on pipes, never in argv), writes one JSON answer on stdout.
 */
import {Entry, type EntryOptions} from '@napi-rs/keyring'

import type {KeychainAnswer, KeychainRequest} from './keychain-protocol.js'

/**
 * On Linux, only the Secret Service: the library would otherwise fall back to the kernel keyring, which is
 * per login session and lost at reboot — a `secrets set` there would look stored and be gone for the daemon.
 */
const OPTIONS: EntryOptions | undefined = process.platform === 'linux' ? {linux: {store: 'secret-service'}} : undefined

function answer(request: KeychainRequest): KeychainAnswer {
  const entry = (name: string): Entry => new Entry(request.service, name, OPTIONS)
  switch (request.op) {
    case 'get': {
      return {ok: true, values: Object.fromEntries(request.names.map((name) => [name, entry(name).getPassword()]))}
    }
    case 'set': {
      entry(request.name).setPassword(request.value)
      return {ok: true}
    }
    case 'delete': {
      return {deleted: entry(request.name).deletePassword(), ok: true}
    }
  }
}

let input = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk: string) => (input += chunk))
process.stdin.on('end', () => {
  let result: KeychainAnswer
  try {
    result = answer(JSON.parse(input) as KeychainRequest)
  } catch (error) {
    result = {message: (error as Error).message, ok: false}
  }
  input = ''
  process.stdout.write(JSON.stringify(result))
})
