import type {ErrorCode} from '../errors/catalog.js'
import {H2KError} from '../errors/h2k-error.js'
import {readAt} from './read-head.js'

/** Descriptors, manifests and other metadata texts are kilobytes; past this a "text" is not one to parse. */
export const TEXT_LIMIT = 16 * 1024 * 1024

export interface BoundedTextOptions {
  /** What the text is, for the message (e.g. "web01.mf"); never its content. */
  label: string
  /** The code of the refusal when the text is larger than `limit` (e.g. H2K_OVF_INVALID). */
  code: ErrorCode
  /** Default TEXT_LIMIT (16 MiB). */
  limit?: number
}

/**
 * A small UTF-8 text file, or a window of one (a tar member: `{offset, size}`), without a byte-order mark;
 * a window larger than the limit is refused with `code` before anything is read.
 */
export async function readBoundedText(file: string, window: {offset: number; size: number}, options: BoundedTextOptions): Promise<string> {
  const limit = options.limit ?? TEXT_LIMIT
  if (window.size > limit) {
    throw new H2KError(options.code, `${options.label} is ${window.size} bytes, more than the ${limit} bytes a text of its kind can be.`, {
      details: {file, label: options.label, limit, size: window.size},
    })
  }
  const bytes = await readAt(file, window.offset, window.size)
  return bytes.toString('utf8').replace(/^\uFEFF/, '')
}
