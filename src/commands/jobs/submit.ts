import {isAbsolute, resolve} from 'node:path'

import {Args} from '@oclif/core'

import {apiClient} from '../../api-client/api-client.js'
import {apiFlags} from '../../api-client/api-flags.js'
import {type ApiJob, jobTable} from '../../api-client/job-table.js'
import {BaseCommand} from '../../base-command.js'
import {SourceDocument} from '../../jobs/document.js'

/** The document with relative `input` paths made absolute against the job file's directory (the daemon has no such directory). */
function withAbsoluteInputs(value: unknown, dir: string): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value
  const doc = {...(value as Record<string, unknown>)}
  const fix = (job: Record<string, unknown>): Record<string, unknown> => (typeof job.input === 'string' && job.input !== '' && !isAbsolute(job.input) ? {...job, input: resolve(dir, job.input)} : job)
  const fixed = fix(doc)
  if (Array.isArray(fixed.jobs)) fixed.jobs = fixed.jobs.map((j: unknown) => (j !== null && typeof j === 'object' && !Array.isArray(j) ? fix(j as Record<string, unknown>) : j))
  return fixed
}

export default class JobsSubmit extends BaseCommand<typeof JobsSubmit> {
  static override args = {file: Args.file({description: 'Job file (YAML or JSON): one job, or `jobs: [...]` with depends_on, retry …', exists: true, required: true})}
  static override description = 'Reads a job file (the same schema as dropped job files: one job or a `jobs:` batch, depends_on between them), makes relative inputs absolute against the file\'s directory, and sends it as JSON to the daemon\'s REST API (POST /api/v1/jobs). The daemon validates it, requires every input under its allowed_input_dirs, and queues every job in one transaction (or none). Outputs go to the daemon\'s output_dir/<date>/<vm>/.'
  static override examples = ['<%= config.bin %> <%= command.id %> wave1.yaml', '<%= config.bin %> <%= command.id %> wave1.yaml --url http://127.0.0.1:8080 --json']
  static override flags = {...apiFlags}
  static override summary = 'Submit a job file to the daemon.'

  public async run(): Promise<{jobs: ApiJob[]; request_id: string}> {
    const doc = await SourceDocument.read(this.args.file)
    const {apiRequest} = await apiClient(this.flags, this.abort.signal)
    const result = (await apiRequest('POST', '/api/v1/jobs', withAbsoluteInputs(doc.value, doc.dir))) as {jobs: ApiJob[]; request_id: string}
    if (!this.jsonEnabled()) {
      for (const line of jobTable(result.jobs)) this.log(line)
      this.logToStderr(`queued ${result.jobs.length} job(s) (request ${result.request_id})`)
    }
    return result
  }
}
