import type {Config} from '@oclif/core'

import {H2KError, type PluginApi, REGISTER_HOOK} from '@hyper2kvm/plugin-api'

import {noteAbandonedHook} from './abandoned-hooks.js'
import {type Contribution, type PluginFailure, StageRegistry} from './stage-registry.js'

/** How long one plugin's `hyper2kvm:register` hook may take before it counts as a failed plugin. */
export const REGISTER_HOOK_TIMEOUT_MS = 10_000
/** A failed plugin's own message is shown, but never more than this, and without control characters. */
const MAX_PLUGIN_MESSAGE = 500

/**
 * Ask every installed plugin for its stages through the `hyper2kvm:register` hook, passing the host's
 * runtime API as `options.api`. A hook that throws or does not answer within the timeout makes its plugin
 * a failed plugin (H2K_PLUGIN_FAILED, with the plugin's name): it never hangs or crashes the command.
 */
export async function loadRegistry(config: Config): Promise<StageRegistry> {
  const api: PluginApi = await import('../plugin-api.js')
  const timeoutMs = REGISTER_HOOK_TIMEOUT_MS
  // captureErrors: a hook that calls this.error()/exit() is a failed plugin too, not the end of the command.
  const answers = await withGuard(config.runHook(REGISTER_HOOK, {api}, timeoutMs, true), config, timeoutMs)
  const contributions: Contribution[] = answers.successes.map(({plugin, result}) => ({
    plugin: {name: plugin.name, version: plugin.version},
    result,
  }))
  const failures: PluginFailure[] = answers.failures.map(({error, plugin}) => {
    const timedOut = error instanceof Error && /^Timed out after \d+ ms\.$/.test(error.message)
    if (timedOut) noteAbandonedHook(plugin.name)
    const reason = timedOut ? `its ${REGISTER_HOOK} hook did not answer within ${timeoutMs / 1000} s` : `its ${REGISTER_HOOK} hook failed: ${pluginMessage(error)}`
    return {
      error: new H2KError('H2K_PLUGIN_FAILED', `Plugin ${plugin.name} failed to load: ${reason}`, {
        cause: error,
        details: {plugin: plugin.name, ...(timedOut ? {timeoutMs} : {})},
      }),
      plugin: {name: plugin.name, version: plugin.version},
      reason,
      ...declaredFormats(plugin.pjson),
    }
  })
  return StageRegistry.fromContributions(contributions, failures)
}

/**
 * oclif's per-hook timer is unref()'d: with a hook that never settles and nothing else pending, Node would
 * end the process (exit 13, nothing printed) instead of waiting for it. This timer holds the process until
 * the per-hook limits have fired, and ends the wait itself if importing a plugin's hook module hangs (the
 * per-hook limit only covers the call).
 */
async function withGuard<T>(answers: Promise<T>, config: Config, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const declaring = config.getPluginsList().filter((p) => (p.hooks[REGISTER_HOOK]?.length ?? 0) > 0).map((p) => p.name)
      reject(new H2KError('H2K_PLUGIN_FAILED', `Loading the stage plugins did not finish within ${(2 * timeoutMs) / 1000} s: one of them hangs while its hook module is imported (plugins with a ${REGISTER_HOOK} hook: ${declaring.join(', ')}).`, {
        details: {plugins: declaring},
        suggestions: ['Uninstall the plugin installed last (`hyper2kvm plugins uninstall NAME`), or link it with `hyper2kvm plugins link` to debug it.'],
      }))
    }, 2 * timeoutMs)
  })
  try {
    return await Promise.race([answers, guard])
  } finally {
    clearTimeout(timer)
  }
}

/** `"hyper2kvm": {"formats": ["vmdk"]}` in a plugin's package.json, when it is a list of short names. */
function declaredFormats(pjson: unknown): {formats?: string[]} {
  const formats = (pjson as {hyper2kvm?: {formats?: unknown}} | undefined)?.hyper2kvm?.formats
  if (!Array.isArray(formats)) return {}
  const names = formats.filter((f): f is string => typeof f === 'string' && /^[a-z0-9]{1,16}$/i.test(f)).map((f) => f.toLowerCase())
  return names.length > 0 ? {formats: names} : {}
}

/** The plugin's own error message, one line, bounded: it is shown on terminals and in JSON. */
function pluginMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error)
  // eslint-disable-next-line no-control-regex
  const flat = text.replaceAll(/[\u0000-\u001F\u007F-\u009F]+/g, ' ').trim()
  return flat.length > MAX_PLUGIN_MESSAGE ? `${flat.slice(0, MAX_PLUGIN_MESSAGE)}…` : flat
}
