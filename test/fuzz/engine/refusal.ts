import {isH2KError} from '@hyper2kvm/plugin-api'

/**
 * The documented refusal of every parser but the VHDX reader: an H2KError, by its stable code. Except
 * H2K_INTERNAL: that is what an unexpected foreign exception becomes, i.e. a bug, so it is a finding.
 */
export function h2kRefusal(error: unknown): string | undefined {
  return isH2KError(error) && error.code !== 'H2K_INTERNAL' ? error.code : undefined
}
