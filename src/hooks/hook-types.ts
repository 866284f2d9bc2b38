import type {StageRegistration} from '../stages/stage-types.js'

/** The typed custom hook through which every plugin (first-party included) contributes stages. */
export const REGISTER_HOOK = 'hyper2kvm:register'

declare module '@oclif/core' {
  interface Hooks {
    'hyper2kvm:register': {
      options: Record<string, never>
      return: StageRegistration | undefined
    }
  }
}
