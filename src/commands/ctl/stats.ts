import {SimpleCtlCommand} from '../../ctl/simple-ctl-command.js'
import {statsSummary, wantsEmoji} from '../../ctl/stats-summary.js'

export default class CtlStats extends SimpleCtlCommand {
  static override description = 'Without --json: a summary (Uptime, Processed, Failed, Success Rate, Avg Processing Time, Queue Depth, Currently Processing with one line per job; emoji only on a terminal without NO_COLOR). With --json: {"stats": {…}}, the keys of output_dir/.daemon/stats.json (daemon_start_time, uptime_hours, total_processed, total_failed, total_retried, success_rate, average_processing_time_seconds, current_queue_depth, by_file_type, current_jobs …), e.g. `jq -r .stats.success_rate`. With a --config whose store is PostgreSQL, `cluster` is added: every node and the totals of the shared store (total_processed, total_failed, duplicates, queued, running … summed over the cluster).'
  static override examples = ['<%= config.bin %> <%= command.id %> --output-dir /var/lib/hyper2kvm/output', "<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml --json | jq '.stats.current_jobs[] | select(.retry_count > 0)'"]
  static override summary = 'Show the daemon statistics (the content of stats.json, live).'
  protected readonly request = 'stats'
  protected override readonly clusterView = true

  protected override print(reply: Record<string, unknown>): void {
    const stats = reply.stats !== null && typeof reply.stats === 'object' ? (reply.stats as Record<string, unknown>) : {}
    for (const line of statsSummary(stats, wantsEmoji())) this.log(line)
  }
}
