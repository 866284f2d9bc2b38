import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'

import {SMTPServer} from 'smtp-server'

export interface ReceivedMail {
  from: string
  to: string[]
  user: string
  /** Whether the session was upgraded with STARTTLS (or was implicit TLS). */
  secure: boolean
  raw: string
  subject: string
  headers: Record<string, string>
  /** The text body, quoted-printable decoded. */
  text: string
}

/** A self-signed certificate for 127.0.0.1 / localhost, made with openssl now (also usable as its own CA). */
export function makeCertificate(dir: string): {key: string; cert: string; certFile: string} {
  const keyFile = join(dir, 'smtp-key.pem')
  const certFile = join(dir, 'smtp-cert.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], {stdio: 'ignore'})
  return {cert: readFileSync(certFile, 'utf8'), certFile, key: readFileSync(keyFile, 'utf8')}
}

function decodeQuotedPrintable(text: string): string {
  const bytes: number[] = []
  const soft = text.replace(/=\r?\n/g, '')
  for (let i = 0; i < soft.length; i++) {
    if (soft[i] === '=' && /^[0-9A-F]{2}$/i.test(soft.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(soft.slice(i + 1, i + 3), 16))
      i += 2
    } else {
      bytes.push(...Buffer.from(soft[i]!, 'utf8'))
    }
  }
  return Buffer.from(bytes).toString('utf8')
}

/** Headers (unfolded, lower-case names) and the decoded text body of a single-part message. */
export function parseMail(raw: string): {headers: Record<string, string>; text: string} {
  const split = raw.indexOf('\r\n\r\n')
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ')
  const headers: Record<string, string> = {}
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':')
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  let body = raw.slice(split + 4)
  const encoding = (headers['content-transfer-encoding'] ?? '').toLowerCase()
  if (encoding === 'quoted-printable') body = decodeQuotedPrintable(body)
  else if (encoding === 'base64') body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')
  return {headers, text: body.replace(/\r\n/g, '\n')}
}

/** A real SMTP server (smtp-server) on 127.0.0.1: STARTTLS with the certificate, AUTH PLAIN/LOGIN required. */
export class SmtpReceiver {
  readonly mails: ReceivedMail[] = []
  readonly authFailures: string[] = []
  readonly errors: string[] = []
  /** Every AUTH attempt: user and whether the session was encrypted then. */
  readonly authAttempts: Array<{user: string; secure: boolean}> = []

  private constructor(private readonly server: SMTPServer) {}

  static async start(options: {key: string; cert: string; user: string; password: string; secure?: boolean; noStarttls?: boolean}): Promise<SmtpReceiver> {
    let receiver!: SmtpReceiver
    const server = new SMTPServer({
      authMethods: ['PLAIN', 'LOGIN'],
      // Without TLS the server would still take AUTH: a client that falls back to plain text would leak.
      allowInsecureAuth: true,
      // noStarttls: a server that neither offers nor accepts STARTTLS (a downgrade by a man in the middle).
      disabledCommands: options.noStarttls ? ['STARTTLS'] : [],
      cert: options.cert,
      key: options.key,
      logger: false,
      onAuth(auth, session, callback) {
        receiver.authAttempts.push({secure: session.secure, user: auth.username ?? ''})
        if (auth.username === options.user && auth.password === options.password) return callback(null, {user: auth.username})
        receiver.authFailures.push(auth.username ?? '')
        return callback(Object.assign(new Error('Invalid username or password'), {responseCode: 535}))
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = []
        stream.on('data', (c: Buffer) => chunks.push(c))
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8')
          const {headers, text} = parseMail(raw)
          receiver.mails.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            headers,
            raw,
            secure: session.secure,
            subject: headers.subject ?? '',
            text,
            to: session.envelope.rcptTo.map((r) => r.address),
            user: String(session.user ?? ''),
          })
          callback()
        })
      },
      secure: options.secure ?? false,
    })
    receiver = new SmtpReceiver(server)
    // A client that drops the connection (e.g. refusing our certificate) is an event of the test, not a crash.
    server.on('error', (error: Error) => receiver.errors.push(error.message))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return receiver
  }

  get port(): number {
    return ((this.server as unknown as {server: {address(): AddressInfo}}).server.address()).port
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
