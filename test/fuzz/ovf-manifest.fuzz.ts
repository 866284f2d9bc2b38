// The OVF manifest (.mf) reader and the per-file algorithm table built from it.
import {algorithmsByName, checkManifest, parseManifest} from '../../plugins/ovf/src/manifest.js'
import {h2kRefusal} from './engine/refusal.js'
import type {FuzzTarget} from './engine/target.js'

export const target: FuzzTarget = {
  run(data) {
    const entries = parseManifest(data.toString('utf8'), 'fuzz.mf')
    algorithmsByName(entries)
    // Every listed file "present" with the digests the manifest claims: a consistent manifest must pass its own check.
    checkManifest(entries, (name) => Object.fromEntries(entries.filter((entry) => entry.name === name).map((entry) => [entry.algorithm, entry.digest])), 'fuzz.mf')
  },
  refusalCode: h2kRefusal,
  maxLength: 8 * 1024,
  dictionary: ['SHA1(', 'SHA256(', 'SHA512(', ')= ', '\r\n', 'da39a3ee5e6b4b0d3255bfef95601890afd80709', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', '(', ')'],
}
