import {dirname} from 'node:path'

import {H2KError, isH2KError} from '../errors/h2k-error.js'
import {refuseEscapingName} from '../fs/contained-path.js'
import {parseVmdkDescriptor} from './vmdk-descriptor.js'

/**
 * The extents an embedded descriptor names get the checks of a text descriptor's (no absolute path, URL,
 * "..", or symlink leaving the folder), whether or not qemu would follow them: a sparse file that names
 * files elsewhere is not one we trust.
 */
export async function checkEmbeddedExtents(text: string, file: string, name: string): Promise<void> {
  let descriptor
  try {
    descriptor = parseVmdkDescriptor(text, `${name} (embedded descriptor)`)
  } catch (error) {
    // Text inside a sparse header that is not a descriptor is damage, not an unknown format.
    if (isH2KError(error) && error.code === 'H2K_INPUT_UNRECOGNIZED') throw new H2KError('H2K_INPUT_CORRUPT', error.message, {cause: error, details: error.details})
    throw error
  }
  for (const extent of descriptor.extents) {
    if (extent.filename !== undefined) await refuseEscapingName(dirname(file), extent.filename, {referrer: `${name} (embedded descriptor)`, what: 'extent'})
  }
}

