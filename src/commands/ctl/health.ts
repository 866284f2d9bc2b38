import {Flags} from '@oclif/core'

import {BaseCommand} from '../../base-command.js'
import {controlRequest} from '../../daemon/control-client.js'
import {daemonStateDir, outputDirFlag} from '../../ctl/daemon-flags.js'
import {healthVerdict, type HealthVerdict, unreachableVerdict} from '../../ctl/health-verdict.js'
import {H2KError} from '@hyper2kvm/plugin-api'
import {mapForeignError} from '../../errors/map-foreign-error.js'
import {escapeControl} from '../../render/escape-control.js'

export default class CtlHealth extends BaseCommand<typeof CtlHealth> {
  static override description =
    'A monitoring check (Nagios/Icinga plugin conventions): one line `OK: …`, `WARNING: …`, `CRITICAL: …` or `UNKNOWN: …` with perfdata, and exit 0, 1, 2 or 3. CRITICAL (2): no daemon answers on the control socket, or the success rate (of the live stats; none before a job finished) is below --critical-below. WARNING (1): the socket does not answer within --timeout, the success rate is below --warning-below, the daemon is PAUSED, DRAINING or STOPPING, or it reports a warning (e.g. a refused bookkeeping directory). UNKNOWN (3): the socket is not yours to use, or the configuration cannot be read.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml',
    '<%= config.bin %> <%= command.id %> --output-dir /var/lib/hyper2kvm/output --critical-below 50 --warning-below 80 --json',
  ]

  static override flags = {
    ...outputDirFlag,
    'critical-below': Flags.integer({default: 50, description: 'CRITICAL when the success rate (percent) is below this.', max: 100, min: 0}),
    timeout: Flags.integer({default: 10, description: 'Seconds to wait for the control socket before WARNING.', max: 300, min: 1}),
    'warning-below': Flags.integer({default: 80, description: 'WARNING when the success rate (percent) is below this.', max: 100, min: 0}),
  }

  static override summary = 'Check the daemon for monitoring: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the seed\'s healthcheck thresholds).'

  public async run(): Promise<HealthVerdict> {
    const result = await this.check()
    if (!this.jsonEnabled()) this.log(escapeControl(result.message))
    process.exitCode = result.exit_code
    return result
  }

  private async check(): Promise<HealthVerdict> {
    const thresholds = {criticalBelow: this.flags['critical-below'], warningBelow: Math.max(this.flags['warning-below'], this.flags['critical-below'])}
    try {
      const stateDirectory = await daemonStateDir(this.flags)
      const timeoutMs = this.flags.timeout * 1000
      const status = await controlRequest(stateDirectory, 'status', timeoutMs)
      const stats = await controlRequest(stateDirectory, 'stats', timeoutMs)
      if (status.ok !== true || stats.ok !== true) return unreachableVerdict('other', 'the daemon refused the status or stats request')
      return healthVerdict(status, (stats.stats ?? {}) as Record<string, unknown>, thresholds)
    } catch (error) {
      const h2k = error instanceof H2KError ? error : mapForeignError(error)
      const kind = h2k.code === 'H2K_DAEMON_NOT_RUNNING' ? 'not-running' : h2k.code === 'H2K_DAEMON_TIMEOUT' ? 'timeout' : 'other'
      return unreachableVerdict(kind, kind === 'other' ? `${h2k.code}: ${h2k.message}` : h2k.message)
    }
  }
}
