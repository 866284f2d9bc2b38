import {register, type StageRegistration} from '@hyper2kvm/plugin-api'

import {amiLoader} from './ami-loader.js'

/** The `hyper2kvm:register` hook: this plugin's loaders. */
export default async function registerAwsStages(): Promise<StageRegistration> {
  return register(amiLoader)
}
