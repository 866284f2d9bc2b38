import {resolve} from 'node:path'

import {Flags} from '@oclif/core'

import {loadDaemonConfig} from './config.js'

/** `ctl …`: which daemon (its output_dir), from --output-dir or the output_dir of --config. */
export const outputDirFlag = {
  'output-dir': Flags.string({description: "The daemon's output_dir (its socket is output_dir/.daemon/control.sock; default: output_dir of --config)."}),
}

export async function daemonOutputDir(flags: {'output-dir'?: string; config?: string}): Promise<string> {
  if (flags['output-dir'] !== undefined) return resolve(flags['output-dir'])
  return (await loadDaemonConfig({config: flags.config})).outputDir
}
