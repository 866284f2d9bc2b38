import {BaseCommand} from '../base-command.js'
import {controlRequest} from '../daemon/control-client.js'
import {daemonOutputDir, outputDirFlag} from './daemon-flags.js'
import {H2KError, isErrorCode} from '@hyper2kvm/plugin-api'
import {escapeControl} from '../render/escape-control.js'

/** `ctl status|stats|pause|resume|drain|stop`: one request on the control socket, humane output or --json. */
export abstract class SimpleCtlCommand extends BaseCommand<typeof SimpleCtlCommand> {
  static override flags = {...outputDirFlag}

  protected abstract readonly request: string

  public async run(): Promise<Record<string, unknown>> {
    const outputDir = await daemonOutputDir(this.flags)
    const reply = await controlRequest(outputDir, this.request)
    // The daemon's id for this request: shown with an error (its log lines carry it), not in the result.
    const requestId = typeof reply.request_id === 'string' && /^req-[0-9a-f]{1,32}$/.test(reply.request_id) ? reply.request_id : undefined
    if (reply.ok !== true) {
      const error = (reply.error ?? {}) as {code?: string; message?: string}
      const message = error.message ?? 'The daemon refused the request.'
      throw new H2KError(isErrorCode(error.code) ? error.code : 'H2K_INTERNAL', requestId ? `${message} (request ${requestId}: grep the daemon's log for it)` : message, {
        details: requestId ? {request_id: requestId} : undefined,
      })
    }
    const {ok: _ok, request_id: _requestId, ...rest} = reply
    if (!this.jsonEnabled()) this.print(rest)
    return rest
  }

  protected print(reply: Record<string, unknown>): void {
    const flat = (value: unknown): string => escapeControl(typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value))
    const width = Math.max(...Object.keys(reply).map((k) => k.length))
    for (const [key, value] of Object.entries(reply)) {
      if (Array.isArray(value) && value.length > 0 && typeof value[0] !== 'number') {
        this.log(`${key}:`)
        for (const item of value) this.log(`  ${flat(item)}`)
      } else this.log(`${key.padEnd(width)}  ${flat(value)}`)
    }
  }
}
