import {H2KError, type VmdkDescriptor, parseVmdkDescriptor, readUpTo} from '@hyper2kvm/plugin-api'
import {open} from 'node:fs/promises'
import {basename} from 'node:path'
import {TextDecoder} from 'node:util'

/** qemu reads at most 1 MiB of a descriptor; real ones are a few KiB. */
export const MAX_DESCRIPTOR_BYTES = 1024 * 1024

/**
 * Decode descriptor bytes. Descriptors declare their encoding ("UTF-8", "windows-1252", "GBK", ...);
 * it matters for non-ASCII extent names, so the text is decoded again when it is not UTF-8.
 */
export function decodeDescriptor(bytes: Buffer, source: string): VmdkDescriptor {
  const first = parseVmdkDescriptor(bytes.toString('utf8'), source)
  const encoding = first.encoding?.trim().toLowerCase()
  if (!encoding || encoding === 'utf-8' || encoding === 'utf8' || !/[^\x00-\x7f]/.test(bytes.toString('latin1'))) return first
  let decoder: TextDecoder
  try {
    decoder = new TextDecoder(encoding, {fatal: true})
  } catch {
    throw new H2KError('H2K_INPUT_UNSUPPORTED', `${source} is written in the "${first.encoding}" encoding, which this system cannot decode.`, {details: {encoding: first.encoding, file: source}})
  }
  let text: string
  try {
    text = decoder.decode(bytes)
  } catch {
    throw new H2KError('H2K_INPUT_CORRUPT', `${source} is not valid "${first.encoding}" text, although it says it is.`, {details: {encoding: first.encoding, file: source}})
  }
  return parseVmdkDescriptor(text, source)
}

/** Read and parse a text descriptor file, refusing one too large to be a descriptor. */
export async function readDescriptorFile(path: string): Promise<VmdkDescriptor> {
  const handle = await open(path, 'r')
  try {
    const {size} = await handle.stat()
    if (size > MAX_DESCRIPTOR_BYTES) {
      throw new H2KError('H2K_INPUT_CORRUPT', `${basename(path)} looks like a VMDK descriptor but is ${size} bytes, far more than a descriptor holds.`, {details: {file: path, size}})
    }
    return decodeDescriptor(await readUpTo(handle, 0, size), basename(path))
  } finally {
    await handle.close()
  }
}
