import type {BlockdevSpec, Stage, StageRegistration} from './stage-types.js'
import {PLUGIN_API_VERSION} from './stage-types.js'
import type {ImageInfo} from './tool-types.js'

/** The oclif hook through which every plugin (first-party included) contributes stages. */
export const REGISTER_HOOK = 'hyper2kvm:register'

/** Build a registration for the current API version: `export default async ({api}) => api.register(stages)`. */
export function register(...stages: Stage[]): StageRegistration {
  return {apiVersion: PLUGIN_API_VERSION, stages}
}

/** What only the host can do (it needs qemu-img and the sandbox); the host implements it in the `api` it passes. */
export interface HostServices {
  /**
   * `qemu-img info` of an image under the host's resource limits, always in the sandbox (which shows it the
   * spec's files plus `files`). Inside a stage use `ctx.imageInfo`, which follows the job's sandbox decision
   * (--no-sandbox) and cancellation signal: that decision is the host's, not a plugin's.
   */
  imageInfo(spec: BlockdevSpec, options?: {signal?: AbortSignal; files?: readonly string[]}): Promise<ImageInfo>
}

/**
 * The runtime API the host hands to every `hyper2kvm:register` hook as `options.api`: this package's runtime
 * values plus the host's services. A plugin installed anywhere (under the data dir, linked, bundled) takes its
 * runtime values from here and needs no runtime import of the host or of this package.
 */
export type PluginApi = typeof import('../index.js') & HostServices

/** The options of a `hyper2kvm:register` hook (oclif adds `config` and `context`). */
export interface RegisterHookOptions {
  api: PluginApi
}

/** A plugin's `hyper2kvm:register` hook: `export default (async ({api}) => api.register(myStage)) satisfies RegisterHook`. */
export type RegisterHook = (options: RegisterHookOptions) => Promise<StageRegistration | undefined>
