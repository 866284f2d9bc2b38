import {H2KError, readAt} from '@hyper2kvm/plugin-api'
import type {ErrorCode} from '@hyper2kvm/plugin-api'

/** OVF descriptors and manifests are kilobytes; anything past this is not one we should parse. */
export const TEXT_LIMIT = 16 * 1024 * 1024

/** Read a small text file (or a window of one, e.g. a tar member), refusing oversized ones with `code`. */
export async function readBoundedText(file: string, window: {offset: number; size: number}, label: string, code: ErrorCode): Promise<string> {
  if (window.size > TEXT_LIMIT) {
    throw new H2KError(code, `${label} is ${window.size} bytes, more than the ${TEXT_LIMIT / 1024 / 1024} MiB a descriptor or manifest can be.`, {details: {file, label}})
  }
  const bytes = await readAt(file, window.offset, window.size)
  return bytes.toString('utf8').replace(/^\uFEFF/, '')
}
