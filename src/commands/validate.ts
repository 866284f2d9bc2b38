import {Args} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {type ValidateResult, validateFile} from '../jobs/validate-file.js'

export default class Validate extends BaseCommand<typeof Validate> {
  static override args = {
    file: Args.string({description: 'Job file, batch file, manifest v1.0 or daemon config (YAML or JSON)', required: true}),
  }

  static override description = `Checks a file against its JSON Schema (schemas/*.schema.json) and the rules the schema cannot express (duplicate job names, inputs outside restrict_inputs_to, compression with a non-qcow2 format) and stage_options against the installed stages' own schemas, without converting anything. Problems are reported as file:line:column with the offending key and what was expected; unknown keys get a "did you mean".`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> batch-job.yaml', description: 'Check a batch file'},
    {command: '<%= config.bin %> <%= command.id %> manifest.json --json', description: 'Machine-readable result (exit 2 when invalid)'},
  ]

  static override summary = 'Validate a job file, batch, manifest or daemon config.'

  public async run(): Promise<ValidateResult> {
    const result = await validateFile(this.args.file, await this.loadStageRegistry())
    if (!this.jsonEnabled()) {
      this.log(`${result.file}: valid ${result.kind}${result.kind === 'daemon' ? ' config' : ` (${result.jobs.length} job${result.jobs.length === 1 ? '' : 's'})`}`)
      for (const job of result.jobs) this.log(`  ${job.name}: ${job.input} → ${job.output_dir} (${job.format})`)
    }
    return result
  }
}
