import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {loadDaemonConfig} from '../daemon/config.js'
import {Daemon} from '../daemon/daemon.js'
import {systemdNotifier} from '../daemon/sd-notify.js'
import {sendReady, sendReloading} from '../daemon/systemd-piece.js'
import {mapForeignError} from '../errors/map-foreign-error.js'
import {settingsFromFlags} from '../job-flags.js'
import {resolveStageOptions} from '../stages/stage-options.js'

export default class DaemonCommand extends BaseCommand<typeof DaemonCommand> {
  static override description = `Converts what is dropped into a directory, through the same pipeline as convert, in one of three layouts. Watch (watch_dir): disks dropped into watch_dir; claimed into watch_dir/.processing/, archived in watch_dir/.processed/<date>/, failures in watch_dir/.errors/ with <file>.error.json. Workflow (--workflow-mode, workflow_dir): disks and job files (single or jobs: batches) dropped into to_be_processed/, then processing/ → processed/<date>/ with <file>.meta.json | failed/<date>/ with <file>.error.json. Manifest workflow (--manifest-workflow-mode, manifest_workflow_dir): manifests v1.0 the same way, each with <manifest>.report.json. An item is claimed once its files are stable (size and mtime unchanged on 3 checks 1 s apart); an .ovf travels with its disks, a VMDK descriptor with its extents, a job file with the inputs it names inside the drop directory. Outputs go to output_dir/YYYY-MM-DD/<vm>/. Jobs, their history and processed files live in SQLite (state_dir/jobs.db; state_dir defaults to output_dir/.daemon), or with store.url in one PostgreSQL shared by several daemons on several hosts (leased jobs, node_id, heartbeat_interval, lease_ttl; README: Several conversion hosts): a killed daemon's running jobs are re-queued (on its next start, or by another node once their lease expires); state_dir/stats.json carries the seed's statistics keys. Control it with \`hyper2kvm ctl\` (socket state_dir/control.sock; ctl health for monitoring, ctl backup for a SQLite store; ctl status|stats|jobs show every node of a shared store, pause|resume|drain|stop --all reach them all). SIGTERM/SIGINT stop (running jobs are cancelled and re-queued), SIGHUP reloads the configuration and reopens log_file, SIGUSR1 only reopens log_file (logrotate). Logs: one line per event on stderr, or only in log_file when set; log_format text|json; --log-level overrides log_level and verbose. With metrics.enabled an HTTP listener serves GET /metrics (Prometheus), /api/v1/health and /api/v1/ready (metrics.address 127.0.0.1, metrics.port 9090 by default; beyond loopback only with metrics.token). With api.enabled the job service REST API (openapi.yaml: submit, list, show, cancel and retry jobs, their log lines, server-sent events, the dead-letter queue) listens on its own port (api.address 127.0.0.1, api.port 8080 by default; beyond loopback only with api.token); \`hyper2kvm jobs\` talks to it. With webhooks: it POSTs job lifecycle events (job.created … job.completed, job.failed, job.dead) as HMAC-signed JSON to each URL, through the same outbox. With notifications.enabled it alerts Slack, Discord, generic (HMAC-signed) webhooks and email on failures, retries, a retry's success and stalls, through a persistent outbox (\`hyper2kvm notify test\` checks the channels). Secrets (notifications.smtp_password, notifications.webhook_secret, metrics.token, api.token, vsphere.password, webhooks.<i>.secret) come from the keychain, systemd credentials, *_file keys or HYPER2KVM_* variables (\`hyper2kvm secrets\`). Under systemd Type=notify it sends READY=1, WATCHDOG=1 (WatchdogSec) and STOPPING=1. The README's Daemon section has every key and what differs from the Python daemon.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> --config /etc/hyper2kvm/daemon.yaml', description: 'Run with a daemon configuration (see examples/daemon.yaml)'},
    {command: '<%= config.bin %> <%= command.id %> --watch-dir /srv/queue --output-dir /srv/out --max-concurrent-jobs 3', description: 'Without a configuration file'},
    {command: '<%= config.bin %> <%= command.id %> --workflow-mode --workflow-dir /var/lib/hyper2kvm/workflow --output-dir /var/lib/hyper2kvm/output', description: 'Workflow layout (disks and job files)'},
    {command: '<%= config.bin %> --config /etc/hyper2kvm/daemon.yaml', description: 'The same as `daemon --config` when the file says `command: daemon`'},
  ]

  static override flags = {
    'max-concurrent-jobs': Flags.integer({description: 'Conversions run at once (default: max_concurrent_jobs, else 3).', max: 64, min: 1}),
    'output-dir': Flags.string({description: 'Where outputs and the daemon state (.daemon/) go (default: output_dir).'}),
    'stability-interval': Flags.integer({description: 'Milliseconds between two stability checks of a new file (default: file_stable_interval, else 1 s).', hidden: true, min: 10}),
    'manifest-workflow-dir': Flags.string({description: 'Manifest workflow layout root (default: manifest_workflow_dir).'}),
    'manifest-workflow-mode': Flags.boolean({description: 'Manifest workflow layout: manifests dropped in <dir>/to_be_processed/, each gets <manifest>.report.json.', exclusive: ['workflow-mode']}),
    'watch-dir': Flags.string({description: 'Directory to watch for new disks (default: watch_dir).'}),
    'workflow-dir': Flags.string({description: 'Workflow layout root (default: workflow_dir).'}),
    'workflow-mode': Flags.boolean({description: 'Workflow layout: to_be_processed/ → processing/ → processed/<date>/ | failed/<date>/ under --workflow-dir; disks and job configs (incl. jobs: batches).'}),
  }

  static override summary = 'Run the conversion service: convert what is dropped into a directory (watch, workflow or manifest-workflow layout).'

  public async run(): Promise<{status: string}> {
    // First thing: without a listener, Node answers SIGUSR1 by opening its inspector on 127.0.0.1:9229
    // (code execution for any local user); logrotate sends it. Until the daemon exists it does nothing.
    let daemon: Daemon | undefined
    process.on('SIGUSR1', () => daemon?.logger.reopen())
    const flags = this.flags
    // Read $NOTIFY_SOCKET (systemd Type=notify) before anything runs a tool that would inherit it.
    systemdNotifier()
    const registry = await this.loadStageRegistry()
    const read = () =>
      loadDaemonConfig({
        config: flags.config,
        'max-concurrent-jobs': flags['max-concurrent-jobs'],
        'output-dir': flags['output-dir'],
        'stability-interval': flags['stability-interval'],
        'manifest-workflow-dir': flags['manifest-workflow-dir'],
        'manifest-workflow-mode': flags['manifest-workflow-mode'] ? true : undefined,
        'watch-dir': flags['watch-dir'],
        'workflow-dir': flags['workflow-dir'],
        'workflow-mode': flags['workflow-mode'] ? true : undefined,
        'log-level': this.explicitFlags['log-level'] === undefined ? undefined : flags['log-level'],
      })
    // The configuration's stage_options apply to every job: refused ones stop the start (or a reload), not each job.
    const load = async () => {
      const next = await read()
      await resolveStageOptions(registry, settingsFromFlags('', next.jobDefaults))
      return next
    }
    const config = await load()
    const running = new Daemon(config, registry)
    daemon = running
    // Registered before start(): a SIGHUP's default action would end the process.
    let started = false
    process.on('SIGHUP', () => {
      // The log is reopened at once (logrotate's postrotate may send SIGHUP); the configuration once started.
      running.logger.reopen()
      if (!started) {
        running.log('warn', 'daemon:reload-ignored', {}, 'SIGHUP while starting; send it again once daemon:start is logged')
        return
      }
      const notified = (what: string) => (error: Error | undefined) => {
        if (error) running.log('warn', 'sd-notify:failed', {what}, error.message)
      }
      void sendReloading().then(notified('reloading'))
      load()
        .then(
          (next) => running.reload(next),
          (error: unknown) => running.log('error', 'daemon:reload-failed', {}, `${mapForeignError(error).message} (keeping the running configuration)`),
        )
        .finally(() => void sendReady(running.snapshot()).then(notified('ready')))
    })
    await running.start()
    // SIGTERM / SIGINT abort this.abort (BaseCommand): that is a stop — also when it came while the daemon was
    // starting (an abort listener added after the fact never fires: the daemon would run on).
    if (this.abort.signal.aborted) void running.stop('signal')
    else this.abort.signal.addEventListener('abort', () => void running.stop('signal'), {once: true})
    // Once per start (a reload does not repeat them): keys accepted but not used yet, secrets in plain text.
    for (const notice of config.notices) running.log(notice.level, notice.event, notice.fields, notice.message)
    started = true
    // systemd (Type=notify): started means the store is open, the control socket and HTTP listener answer.
    const readyError = await sendReady(running.snapshot())
    if (readyError) running.log('warn', 'sd-notify:failed', {what: 'ready'}, readyError.message)
    await running.wait()
    process.exitCode = 0
    return {status: 'stopped'}
  }
}
