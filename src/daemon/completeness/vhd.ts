import {type ByteSource, COMPLETE, type Completeness, incomplete} from './byte-source.js'

/**
 * Has a VHD arrived whole? Every VHD (fixed, dynamic, differencing) ends with its 512-byte footer, which
 * starts with "conectix" (511 bytes in files of old Virtual PC versions). A fixed VHD has nothing else to
 * recognise it by, so the daemon asks this for `.vhd` names as well as for files starting with the copy.
 */
export async function vhdCompleteness(source: ByteSource): Promise<Completeness> {
  if (source.size < 512) return incomplete('the VHD footer has not arrived yet')
  const tail = await source.read(source.size - 512, 512)
  const at = tail.indexOf('conectix', 0, 'latin1')
  return at === 0 || at === 1 ? COMPLETE : incomplete('the VHD has no footer at its end yet')
}
