import {Command, Errors, Flags, type Interfaces} from '@oclif/core'

import {H2KError, type LogLevel} from '@hyper2kvm/plugin-api'
import {mapForeignError} from './errors/map-foreign-error.js'
import {renderError} from './errors/render-error.js'
import {type EffectiveConfig, loadConfig} from './jobs/config.js'
import type {StageRegistry} from './stages/stage-registry.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/**
 * Every hyper2kvm command extends this: it owns --json (one result or error object on stdout, nothing
 * else), --log-level, Ctrl-C (cancels the running job cleanly, a second Ctrl-C exits at once), and the
 * rendering of errors with their code, suggestions and exit code.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    // -h as well as --help, as users of other CLIs expect.
    help: Flags.help({char: 'h', description: 'Show the help of this command.', helpGroup: 'GLOBAL'}),
    version: Flags.version({char: 'v', description: 'Show the hyper2kvm version.', helpGroup: 'GLOBAL'}),
    config: Flags.file({
      description: 'Configuration file with default settings (default: the first of ./hyper2kvm.yaml, $XDG_CONFIG_HOME/hyper2kvm/config.yaml (~/.config when unset), hyper2kvm/config.yaml in each $XDG_CONFIG_DIRS directory (/etc/xdg when unset), /etc/hyper2kvm/config.yaml). HYPER2KVM_* environment variables override it; flags override both.',
      helpGroup: 'GLOBAL',
    }),
    'log-level': Flags.option({
      default: 'info' as const,
      description: 'How much to log on stderr.',
      helpGroup: 'GLOBAL',
      options: ['error', 'warn', 'info', 'debug'] as const,
    })(),
  }

  static override enableJsonFlag = true

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>
  /** Aborted on SIGINT/SIGTERM; pass it to every job so children are killed and outputs cleaned. */
  protected readonly abort = new AbortController()
  /** The flags the user actually gave (not filled in from defaults): they override job and config files. */
  protected explicitFlags: Record<string, unknown> = {}
  private signalsSeen = 0

  public override async init(): Promise<void> {
    await super.init()
    const {args, flags, metadata} = await this.parse({
      args: this.ctor.args,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      flags: this.ctor.flags,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
    this.explicitFlags = Object.fromEntries(
      Object.entries(flags as Record<string, unknown>).filter(([name, value]) => value !== undefined && !metadata.flags[name]?.setFromDefault),
    )
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.on(signal, () => {
        this.signalsSeen++
        if (this.signalsSeen > 1) process.exit(130)
        process.stderr.write(`\n${signal} received: cancelling (press Ctrl-C again to exit at once) ...\n`)
        this.abort.abort(new H2KError('H2K_CANCELLED', `Cancelled by ${signal}.`))
      })
    }
  }

  /** Defaults from the configuration file and HYPER2KVM_* variables (validated), under job files and flags. */
  protected async effectiveConfig(): Promise<EffectiveConfig> {
    return loadConfig({configPath: (this.flags as {config?: string}).config})
  }

  /**
   * The stage registry: every installed plugin asked through its `hyper2kvm:register` hook, each with a time
   * limit (a hook that hangs makes its plugin a failed plugin, not a hung command). Failed plugins are shown
   * on stderr (`quiet`: the caller shows them itself, as `plugins` does); they never stop the command.
   */
  protected async loadStageRegistry(options: {quiet?: boolean} = {}): Promise<StageRegistry> {
    const {loadRegistry} = await import('./stages/load-registry.js')
    const registry = await loadRegistry(this.config)
    if (!options.quiet) {
      for (const failure of registry.failures) process.stderr.write(`warning ${failure.error.code}: ${failure.error.message}\n`)
    }
    return registry
  }

  /** Before the flags are parsed (a parse error is being reported) there is no level yet: info. */
  protected get logLevel(): LogLevel | 'error' {
    return (this.flags as typeof this.flags | undefined)?.['log-level'] ?? 'info'
  }

  /** A debug-level note on stderr (shown with --log-level debug). */
  protected debugNote(message: string): void {
    if (this.logLevel === 'debug') this.logToStderr(`debug: ${message}`)
  }

  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (error instanceof Errors.ExitError) throw error
    const h2k = toH2KError(error)
    renderError(h2k, {debug: this.logLevel === 'debug', json: this.jsonEnabled()})
    this.exit(h2k.exitCode)
  }
}

/** oclif's own parse errors are usage errors; everything else goes through the one foreign-error map. */
function toH2KError(error: Error & {exitCode?: number; oclif?: {exit?: number}}): H2KError {
  if (error instanceof H2KError) return error
  const isParseError = error instanceof Errors.CLIError && (error.oclif?.exit === 2 || /flag|argument|expected/i.test(error.message))
  if (isParseError) return new H2KError('H2K_USAGE', error.message.replace(/\n\s*See more help with --help$/, ''), {cause: error})
  return mapForeignError(error)
}
