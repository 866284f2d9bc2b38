/**
 * The value `hyper2kvm secrets set` stores: typed at a prompt that does not echo (a terminal), or read from
 * stdin (a pipe, a file). Never from argv, where every user of the machine can read it in `ps`.
 */
import {H2KError} from '@hyper2kvm/plugin-api'
import {SECRET_MAX_BYTES} from './secret-file.js'

const tooLarge = (): H2KError => new H2KError('H2K_USAGE', `The value on stdin is larger than ${SECRET_MAX_BYTES / 1024} KiB: not a password or token.`)

/** Everything on a non-terminal stdin, bounded, one trailing newline stripped. */
async function readPiped(stdin: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk))
    size += buffer.length
    if (size > SECRET_MAX_BYTES + 2) throw tooLarge()
    chunks.push(buffer)
  }
  const value = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
  if (Buffer.byteLength(value) > SECRET_MAX_BYTES) throw tooLarge()
  return value
}

/** One line typed at a terminal, not echoed (raw mode: backspace edits, Ctrl-C cancels, Enter ends). */
function readHidden(stdin: NodeJS.ReadStream, prompt: string): Promise<string> {
  // Echo off before the prompt shows: whatever is typed once it is visible must not be echoed.
  stdin.setRawMode(true)
  process.stderr.write(prompt)
  stdin.setEncoding('utf8')
  stdin.resume()
  return new Promise((resolve, reject) => {
    let value = ''
    const finish = (error?: H2KError): void => {
      stdin.off('data', onData)
      stdin.setRawMode(false)
      stdin.pause()
      process.stderr.write('\n')
      if (error) reject(error)
      else resolve(value)
    }
    const onData = (text: string): void => {
      for (const char of text) {
        if (char === '\r' || char === '\n' || char === '\u0004') return finish()
        if (char === '\u0003') return finish(new H2KError('H2K_CANCELLED', 'Cancelled at the prompt; nothing was stored.'))
        if (char === '\u007F' || char === '\b') value = [...value].slice(0, -1).join('')
        else value += char
        if (Buffer.byteLength(value) > SECRET_MAX_BYTES) return finish(tooLarge())
      }
    }
    stdin.on('data', onData)
  })
}

/** The secret's value from the terminal (prompted, hidden) or from stdin; an empty value is a usage error. */
export async function readSecretInput(name: string, stdin: NodeJS.ReadStream = process.stdin): Promise<string> {
  const value = stdin.isTTY ? await readHidden(stdin, `Value for ${name} (not echoed): `) : await readPiped(stdin)
  if (value === '') {
    throw new H2KError('H2K_USAGE', `No value for ${name}: ${stdin.isTTY ? 'nothing was typed' : 'stdin was empty'}.`, {
      suggestions: [`Type it at the prompt, or pipe it: \`printf %s "$VALUE" | hyper2kvm secrets set ${name}\` (never as an argument: argv is visible to every user).`],
    })
  }
  return value
}
