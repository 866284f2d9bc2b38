import type {RegisterHookOptions, StageRegistration} from '@hyper2kvm/plugin-api'

/** Types oclif's runHook for the hook through which every plugin (first-party included) contributes stages. */
declare module '@oclif/core' {
  interface Hooks {
    'hyper2kvm:register': {
      options: RegisterHookOptions
      return: StageRegistration | undefined
    }
  }
}
