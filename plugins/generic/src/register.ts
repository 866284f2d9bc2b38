import {register} from '@hyper2kvm/plugin-api'

import {qcow2Loader} from './qcow2-loader.js'
import {rawLoader} from './raw-loader.js'

/** oclif `hyper2kvm:register` hook: contributes the raw and qcow2 loaders. */
export default async function registerGeneric() {
  return register(rawLoader, qcow2Loader)
}
