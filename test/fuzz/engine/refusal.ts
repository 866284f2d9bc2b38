import {isH2KError} from '../../../src/errors/h2k-error.js'

/** The documented refusal of every parser but the VHDX reader: an H2KError, by its stable code. */
export function h2kRefusal(error: unknown): string | undefined {
  return isH2KError(error) ? error.code : undefined
}
