import {register} from '@hyper2kvm/plugin-api'

import {vhdLoader} from './vhd-loader.js'
import {vhdxLoader} from './vhdx-loader.js'

/** oclif `hyper2kvm:register` hook: contributes the VHD and VHDX/AVHDX loaders. */
export default async function registerHyperV() {
  return register(vhdLoader, vhdxLoader)
}
