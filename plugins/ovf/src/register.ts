import {register, type StageRegistration} from '@hyper2kvm/plugin-api'

import {ovaLoader} from './ova-loader.js'
import {ovfLoader} from './ovf-loader.js'

/** The `hyper2kvm:register` hook: this plugin's loaders. */
export default async function registerOvfStages(): Promise<StageRegistration> {
  return register(ovaLoader, ovfLoader)
}
