import {register} from '@hyper2kvm/plugin-api'

import {vmdkLoader} from './vmdk-loader.js'

/** oclif `hyper2kvm:register` hook: contributes the VMDK loader. */
export default async function registerVmware() {
  return register(vmdkLoader)
}
