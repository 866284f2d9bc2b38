import {access} from 'node:fs/promises'
import {homedir} from 'node:os'
import {isAbsolute, join, resolve} from 'node:path'

import {H2KError} from '@hyper2kvm/plugin-api'
import {defaultJobSettings} from '../stages/job-defaults.js'
import {documentKind, entryToFlags, type FlagValues, type JobEntry} from './job-plan.js'
import {schemaValidator} from './schemas.js'
import {documentStageOptions, type StageOptionLayer} from './stage-option-layer.js'

/** The job-file keys a configuration may set (defaults for every job); `input` and `name` are per job. */
export const CONFIG_KEYS = ['output_dir', 'output_format', 'compress', 'compression', 'flatten', 'fix', 'fstab_mode', 'regen_initramfs', 'fix_grub', 'verify_boot', 'initramfs_drivers', 'initramfs_mode', 'overwrite', 'sandbox', 'keep_vmware_tools', 'emit', 'keep_macs'] as const
export type ConfigKey = (typeof CONFIG_KEYS)[number]

/**
 * Where a configuration file is looked for when --config is not given: the first that exists wins.
 * ./hyper2kvm.yaml, then the XDG base directories (the user's, then each system one in order), then
 * /etc/hyper2kvm/config.yaml.
 */
export function configSearchPath(cwd = process.cwd(), home = homedir(), env: NodeJS.ProcessEnv = process.env): string[] {
  // The XDG base directory rule: $XDG_CONFIG_HOME when set to an absolute path, else ~/.config;
  // $XDG_CONFIG_DIRS is a colon-separated list, /etc/xdg when unset or empty; relative entries are ignored.
  const xdg = env.XDG_CONFIG_HOME
  const userConfig = xdg !== undefined && isAbsolute(xdg) ? xdg : join(home, '.config')
  const systemConfigs = (env.XDG_CONFIG_DIRS || '/etc/xdg').split(':').filter((dir) => isAbsolute(dir))
  const dirs = [userConfig, ...systemConfigs].map((dir) => join(dir, 'hyper2kvm', 'config.yaml'))
  return [...new Set([join(cwd, 'hyper2kvm.yaml'), ...dirs, '/etc/hyper2kvm/config.yaml'])]
}

export interface ConfigValue {
  value: unknown
  /** `default`, the config file's path, or `env HYPER2KVM_…`. */
  source: string
}

export interface EffectiveConfig {
  /** The configuration file used, if any. */
  file?: string
  searched: string[]
  settings: Record<ConfigKey, ConfigValue>
  /** The non-default settings as convert flag values: the lowest layer under job files and flags. */
  flags: FlagValues
}

const envName = (key: string): string => `HYPER2KVM_${key.toUpperCase()}`

function fromEnv(key: ConfigKey, text: string): unknown {
  if (['compress', 'flatten', 'fix', 'regen_initramfs', 'fix_grub', 'verify_boot', 'overwrite', 'sandbox', 'keep_vmware_tools', 'keep_macs'].includes(key)) {
    if (/^(1|true|yes|on)$/i.test(text)) return true
    if (/^(0|false|no|off)$/i.test(text)) return false
    return text
  }
  if (key === 'emit') return text.split(',').map((kind) => kind.trim()).filter(Boolean)
  if (key === 'initramfs_drivers') return text.split(',').map((d) => d.trim()).filter(Boolean)
  return text
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  )
}

/**
 * The effective configuration: built-in defaults < configuration file (--config, else the first of
 * configSearchPath()) < HYPER2KVM_* environment variables. Flags (and job files) override all of it.
 * The file is validated with the job schema (or the daemon schema for a daemon config).
 */
export async function loadConfig(options: {configPath?: string; cwd?: string; env?: NodeJS.ProcessEnv; home?: string} = {}): Promise<EffectiveConfig> {
  const env = options.env ?? process.env
  const searched = options.configPath ? [resolve(options.configPath)] : configSearchPath(options.cwd, options.home, env)
  let file: string | undefined
  for (const candidate of searched) {
    if (await exists(candidate)) {
      file = candidate
      break
    }
  }
  if (options.configPath && !file) throw new H2KError('H2K_INPUT_NOT_FOUND', `The configuration file ${options.configPath} does not exist.`, {details: {path: options.configPath}})

  const defaults = defaultJobSettings('', 'out')
  const builtIn: Record<ConfigKey, unknown> = {
    compress: defaults.compress,
    compression: defaults.compression,
    emit: defaults.emit ?? [],
    fix: defaults.fix.enabled,
    fix_grub: defaults.fix.grub,
    flatten: true,
    fstab_mode: defaults.fix.fstabMode,
    initramfs_drivers: defaults.fix.initramfsDrivers ?? 'built-in list',
    initramfs_mode: defaults.fix.initramfsMode ?? 'auto',
    keep_vmware_tools: defaults.fix.keepVmwareTools ?? false,
    keep_macs: defaults.keepMacs ?? false,
    output_dir: defaults.outputDir,
    output_format: defaults.format,
    overwrite: defaults.overwrite,
    regen_initramfs: defaults.fix.initramfs,
    sandbox: defaults.sandbox,
    verify_boot: defaults.boot.verify,
  }
  const settings = Object.fromEntries(CONFIG_KEYS.map((k) => [k, {source: 'default', value: builtIn[k]}])) as Record<ConfigKey, ConfigValue>
  const entry: JobEntry = {}
  let baseDir = options.cwd ?? process.cwd()
  let stageOptions: StageOptionLayer | undefined

  if (file) {
    // The YAML reader (~70 modules) only when there is a file: every command loads its configuration.
    const {SourceDocument} = await import('./document.js')
    const doc = await SourceDocument.read(file)
    baseDir = doc.dir
    const kind = documentKind(doc.value)
    if (kind === 'manifest') throw doc.invalid([doc.violation([], 'a manifest is not a configuration file')], 'configuration file')
    doc.validate(kind === 'daemon' ? 'daemon' : 'job', 'configuration file')
    const values = doc.value as Record<string, unknown>
    const perJob = ['input', 'name', 'jobs', 'concurrency', 'continue_on_error', 'restrict_inputs_to'].filter((k) => k in values)
    if (perJob.length > 0) throw doc.invalid(perJob.map((k) => doc.violation([k], `"${k}" belongs in a job file, not in a configuration file`, {key: true})), 'configuration file')
    if (values.out_format !== undefined && values.output_format === undefined) values.output_format = values.out_format
    // stage_options: the lowest layer of every job's stage options (under job files and --stage-option).
    stageOptions = documentStageOptions(doc, ['stage_options'], values.stage_options)
    for (const key of CONFIG_KEYS) {
      if (values[key] !== undefined) {
        ;(entry as Record<string, unknown>)[key] = values[key]
        settings[key] = {source: file, value: key === 'output_dir' ? resolve(doc.dir, String(values[key])) : values[key]}
      }
    }
  }

  const fromEnvironment: Record<string, unknown> = {}
  for (const key of CONFIG_KEYS) {
    const text = env[envName(key)]
    if (text !== undefined && text !== '') fromEnvironment[key] = fromEnv(key, text)
  }
  if (Object.keys(fromEnvironment).length > 0) {
    const validate = schemaValidator('job')
    if (!validate(fromEnvironment)) {
      const problems = (validate.errors ?? []).map((e) => `${envName(e.instancePath.split('/')[1] ?? '')}: ${e.message ?? 'is invalid'}${e.keyword === 'enum' ? ` (${(e.params as {allowedValues: unknown[]}).allowedValues.join(', ')})` : ''}`)
      throw new H2KError('H2K_JOB_INVALID', `Invalid HYPER2KVM_* environment variables:\n${problems.join('\n')}`, {details: {problems}, suggestions: ['Fix or unset the variable; `hyper2kvm config show` lists the effective settings.']})
    }
    for (const [key, value] of Object.entries(fromEnvironment)) {
      ;(entry as Record<string, unknown>)[key] = value
      settings[key as ConfigKey] = {source: `env ${envName(key)}`, value: key === 'output_dir' ? resolve(String(value)) : value}
    }
  }
  // output_dir from the environment is relative to the working directory, from the file to the file.
  const flags = entryToFlags({...entry, output_dir: undefined}, baseDir)
  if (settings.output_dir.source !== 'default') flags['output-dir'] = settings.output_dir.value
  if (stageOptions !== undefined) flags['stage-option'] = stageOptions
  return {file, flags, searched, settings}
}
