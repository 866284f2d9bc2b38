import {createTransport} from 'nodemailer'

import type {Channel, DeliveryMessage, DeliveryOutcome} from '../delivery/channel.js'
import {redactSecrets} from '../secrets/resolve-secret.js'
import {emailBody, emailSubject} from './email-message.js'
import type {Notice} from './notice.js'
import type {EmailSettings} from './settings.js'

/**
 * Mail over SMTP with nodemailer: implicit TLS (`tls`, port 465), STARTTLS required (`starttls`: a server
 * that does not offer it is an error, never a silent downgrade) or none; the certificate is checked unless
 * smtp_tls_insecure. One connection per message: notifications are rare and a pool would hold a socket open.
 */
export class EmailChannel implements Channel {
  readonly id: string
  readonly label: string

  constructor(private readonly settings: EmailSettings) {
    this.id = settings.id
    this.label = `email ${settings.server}:${settings.port} (${settings.security})`
  }

  async send(message: DeliveryMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    const s = this.settings
    const notice = message.payload as Notice
    const transport = createTransport({
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
      host: s.server,
      ignoreTLS: s.security === 'none',
      port: s.port,
      requireTLS: s.security === 'starttls',
      secure: s.security === 'tls',
      socketTimeout: 30_000,
      tls: {rejectUnauthorized: !s.tlsInsecure, ...(s.tlsCa ? {ca: s.tlsCa} : {})},
      ...(s.username !== undefined ? {auth: {pass: s.password ?? '', user: s.username}} : {}),
    })
    try {
      const info = await transport.sendMail({
        from: s.from,
        headers: {'X-Hyper2kvm-Delivery': message.id, 'X-Hyper2kvm-Event': message.event},
        messageId: `<${message.id}@hyper2kvm>`,
        signal,
        subject: emailSubject(s.subjectPrefix, notice),
        text: emailBody(notice),
        to: s.to,
      })
      const rejected = (info.rejected ?? []).length
      return rejected > 0 ? {ok: false, permanent: true, reason: `${rejected} recipient(s) refused`} : {detail: info.response, ok: true}
    } catch (error) {
      const e = error as Error & {code?: string; responseCode?: number}
      if (signal.aborted) return {ok: false, permanent: false, reason: (signal.reason as Error | undefined)?.name === 'TimeoutError' ? 'timed out' : 'aborted'}
      // 5xx: the server refused for good (bad credentials, refused sender); the rest may pass later.
      const permanent = e.responseCode !== undefined && e.responseCode >= 500
      return {ok: false, permanent, reason: redactSecrets(`${e.code ?? 'SMTP'}${e.responseCode ? ` ${e.responseCode}` : ''}: ${e.message}`)}
    } finally {
      transport.close()
    }
  }
}
