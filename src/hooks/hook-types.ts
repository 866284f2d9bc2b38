import type {StageRegistration} from '../stages/stage-types.js'

/** The typed custom hook through which every plugin (first-party included) contributes stages. */
export const REGISTER_HOOK = 'hyper2kvm:register'

/**
 * The runtime API the host hands to every `hyper2kvm:register` hook as `options.api`: a plugin installed
 * anywhere (under the data dir, linked, bundled) takes its runtime values from here and needs no import of
 * the host, which may not resolve from where it was installed.
 */
export type PluginApi = typeof import('../plugin-api.js')

declare module '@oclif/core' {
  interface Hooks {
    'hyper2kvm:register': {
      options: {api: PluginApi}
      return: StageRegistration | undefined
    }
  }
}
