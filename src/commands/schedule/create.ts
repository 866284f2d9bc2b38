import {Flags} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {BaseCommand} from '../../base-command.js'
import {type ApiSchedule, createBody, scheduleDetail} from '../../schedule/schedule-cli.js'

export default class ScheduleCreate extends BaseCommand<typeof ScheduleCreate> {
  static override description = `Asks the daemon's REST API (POST /api/v1/schedules). What each run converts: --job-file (a job file or jobs: batch, read at each run), --sweep-dir (every disk file there at run time, one job each; --pattern narrows), --manifest, --input (one disk), or --file, a schedule file with every key (a migration wave: cron, window and dependent jobs; see examples/waves/wave-1.yaml) that the other flags override. Paths must lie under the daemon's allowed_input_dirs. --cron is five fields read in --timezone (IANA, default the daemon host's). Every job of a run gets --window/--window-end and the retry policy (the window read in --timezone, like the cron); --overlap skip (default) skips a due time while the previous run's jobs are unfinished, queue submits anyway; --catch-up one (default) runs the latest due time missed while the daemon was down, none skips them, all runs each (at most 100).`
  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> --name nightly --cron "0 2 * * *" --timezone America/Chicago --sweep-dir /srv/exports/nightly --window 22:00-06:00 --retry-max 3 --retry-backoff exponential', description: 'Every disk dropped in a directory, converted nightly inside a window'},
    {command: '<%= config.bin %> <%= command.id %> --file examples/waves/wave-1.yaml', description: 'A migration wave: schedule, window and dependent jobs in one file'},
  ]

  static override flags = {
    ...apiFlags,
    file: Flags.file({description: 'A schedule file (YAML/JSON: id, name, cron, timezone, window, job_template …, relative paths against the file).'}),
    id: Flags.string({description: 'Schedule id (default: made up, s-xxxxxxxx).'}),
    name: Flags.string({description: 'A name to show.'}),
    description: Flags.string({description: 'What it is for.'}),
    cron: Flags.string({description: 'Five cron fields: minute hour day-of-month month day-of-week, e.g. "0 2 * * *".'}),
    timezone: Flags.string({description: 'IANA time zone of the cron fields (default: the daemon host\'s).'}),
    window: Flags.string({description: 'Time window for every job of a run, "HH:MM-HH:MM" (may cross midnight) in --timezone; jobs wait in queued outside it.'}),
    'window-end': Flags.option({description: 'A running job when its window closes: finish (default) or cancel.', options: ['finish', 'cancel'] as const})(),
    'retry-max': Flags.integer({description: 'Retries per job (its retry.max_retries).', max: 100, min: 0}),
    'retry-backoff': Flags.option({description: 'Backoff between retries.', options: ['exponential', 'fixed', 'none'] as const})(),
    'job-file': Flags.string({description: 'A job file (single job or jobs: batch with depends_on) read at each run.'}),
    'sweep-dir': Flags.string({description: 'A directory: every disk file in it at run time becomes a job (symlinks refused).'}),
    pattern: Flags.string({description: 'With --sweep-dir: only file names matching (* and ?), e.g. "*.vmdk".', dependsOn: ['sweep-dir']}),
    manifest: Flags.string({description: 'A manifest v1.0 read at each run.'}),
    input: Flags.string({description: 'One disk or VM to convert at each run.'}),
    overlap: Flags.option({description: 'A due time while the previous run is unfinished: skip (default) or queue.', options: ['skip', 'queue'] as const})(),
    'catch-up': Flags.option({description: 'Due times missed while the daemon was down: one (default), none, all.', options: ['none', 'one', 'all'] as const})(),
    tag: Flags.string({description: 'A tag (repeatable).', multiple: true}),
    disabled: Flags.boolean({default: false, description: 'Create it disabled (enable later).'}),
  }

  static override summary = 'Create a schedule on the daemon: cron, time zone, window, retries and what to convert.'

  public async run(): Promise<{schedule: ApiSchedule}> {
    const body = await createBody(this.flags)
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const reply = (await apiRequest('POST', '/api/v1/schedules', body)) as {schedule: ApiSchedule}
    if (!this.jsonEnabled()) for (const line of scheduleDetail(reply.schedule, [])) this.log(line)
    return reply
  }
}
