import {bootVerifier} from '../stages/boot-verifier.js'
import {qemuImgConverter} from '../stages/qemu-img-converter.js'
import {qemuImgCheckVerifier, qemuImgCompareVerifier} from '../stages/qemu-img-verifiers.js'
import {register} from '../plugin-api.js'

/** The host contributes its own converter and verifiers (boot test included) through the same hook third parties use. */
export default async function registerCore() {
  return register(qemuImgConverter, qemuImgCheckVerifier, qemuImgCompareVerifier, bootVerifier)
}
