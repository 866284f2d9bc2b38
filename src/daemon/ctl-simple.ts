import {controlRequest} from './control-client.js'
import {BaseCommand} from '../base-command.js'
import {daemonOutputDir, outputDirFlag} from './ctl-command.js'
import {H2KError} from '../errors/h2k-error.js'
import {isErrorCode} from '../errors/catalog.js'
import {escapeControl} from '../render/escape-control.js'

/** `ctl status|stats|pause|resume|drain|stop`: one request on the control socket, humane output or --json. */
export abstract class SimpleCtlCommand extends BaseCommand<typeof SimpleCtlCommand> {
  static override flags = {...outputDirFlag}

  protected abstract readonly request: string

  public async run(): Promise<Record<string, unknown>> {
    const outputDir = await daemonOutputDir(this.flags)
    const reply = await controlRequest(outputDir, this.request)
    if (reply.ok !== true) {
      const error = (reply.error ?? {}) as {code?: string; message?: string}
      throw new H2KError(isErrorCode(error.code) ? error.code : 'H2K_INTERNAL', error.message ?? 'The daemon refused the request.')
    }
    const {ok: _ok, ...rest} = reply
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
