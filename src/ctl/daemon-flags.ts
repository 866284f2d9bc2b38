import {join, resolve} from 'node:path'

import {Flags} from '@oclif/core'

import {type Layout, layoutOf} from '../daemon/layout.js'
import {stateDir} from '../daemon/state-paths.js'
import type {StoreTarget} from '../store/store-target.js'

/**
 * The flags the commands about a daemon share (ctl, dedup, errors): which daemon, from a flag or its
 * --config. CLI pieces, kept out of src/daemon so that the daemon does not depend on the CLI.
 */

/** `ctl …`: which daemon (its output_dir), from --output-dir or the output_dir of --config. */
export const outputDirFlag = {
  'output-dir': Flags.string({description: "The daemon's output_dir (its socket is output_dir/.daemon/control.sock; default: the state_dir of --config)."}),
}

/**
 * The daemon configuration (its YAML reader, the keychain lookup of secrets) is imported only when it is
 * read: `ctl status --output-dir D` needs none of it.
 */
const loadDaemonConfig: typeof import('../daemon/config.js').loadDaemonConfig = async (options) => (await import('../daemon/config.js')).loadDaemonConfig(options)

export async function daemonOutputDir(flags: {'output-dir'?: string; config?: string}): Promise<string> {
  if (flags['output-dir'] !== undefined) return resolve(flags['output-dir'])
  return (await loadDaemonConfig({config: flags.config})).outputDir
}

/**
 * The state directory (state_dir) of the daemon named by the flags, where its control socket is: with
 * --output-dir alone, `<dir>/.daemon`; else the state_dir of --config (default output_dir/.daemon).
 */
export async function daemonStateDir(flags: {'output-dir'?: string; config?: string}): Promise<string> {
  if (flags['output-dir'] !== undefined) return stateDir(resolve(flags['output-dir']))
  return (await loadDaemonConfig({config: flags.config})).stateDir
}

/**
 * The job store of the daemon named by the flags: with --config, the configuration's (its PostgreSQL
 * store when it has store:/database:, else jobs.db in its state_dir, --output-dir overriding output_dir);
 * with --output-dir alone, `<dir>/.daemon/jobs.db` as before.
 */
export async function daemonStoreTarget(flags: {'output-dir'?: string; config?: string}): Promise<StoreTarget> {
  const sqliteIn = (outputDir: string): string => join(stateDir(outputDir), 'jobs.db')
  if (flags.config === undefined && flags['output-dir'] !== undefined) return {sqlitePath: sqliteIn(resolve(flags['output-dir']))}
  const config = await loadDaemonConfig({config: flags.config, ...(flags['output-dir'] === undefined ? {} : {'output-dir': flags['output-dir']})})
  const sqlitePath = join(config.stateDir, 'jobs.db')
  return config.store === undefined ? {sqlitePath} : {postgres: config.store, sqlitePath}
}

/** `--watch-dir`: the errors commands' override for a watch layout (default: the layout of --config). */
export const watchDirFlag = {
  'watch-dir': Flags.string({description: "The daemon's watch_dir (watch layout; default: the layout of --config, which may be a workflow layout)."}),
}

/** The layout whose error files the errors commands read: --watch-dir, else the daemon configuration's. */
export async function errorsLayout(flags: {'watch-dir'?: string; config?: string}): Promise<Layout> {
  if (flags['watch-dir'] !== undefined) return layoutOf('watch', resolve(flags['watch-dir']))
  return (await loadDaemonConfig({config: flags.config})).layout
}

/** A cluster's store: the PostgreSQL store of --config (none with --output-dir alone, or a SQLite store). */
export interface ClusterStore {
  target: StoreTarget
  /** lease_ttl of the configuration, in ms: a node silent for longer is shown dead. */
  leaseTtlMs: number
}

/** The cluster store named by --config, when its store is PostgreSQL; undefined otherwise (one daemon, its socket). */
export async function clusterStoreOf(flags: {'output-dir'?: string; config?: string}): Promise<ClusterStore | undefined> {
  if (flags.config === undefined) return undefined
  const config = await loadDaemonConfig({config: flags.config, ...(flags['output-dir'] === undefined ? {} : {'output-dir': flags['output-dir']})})
  if (config.store === undefined) return undefined
  return {leaseTtlMs: config.leaseTtl * 1000, target: {postgres: config.store, sqlitePath: join(stateDir(config.outputDir), 'jobs.db')}}
}
