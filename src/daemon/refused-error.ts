import {H2KError, isErrorCode} from '@hyper2kvm/plugin-api'
import type {ClaimRecord} from './claim-files.js'

/** The error a claim was refused with at intake, as its record keeps it (the file is not read again to find it). */
export function refusedError(refused: NonNullable<ClaimRecord['refused']>): H2KError {
  return new H2KError(isErrorCode(refused.code) ? refused.code : 'H2K_INTERNAL', refused.message, {details: refused.details, suggestions: refused.suggestions})
}
