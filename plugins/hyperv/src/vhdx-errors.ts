import {H2KError} from '@hyper2kvm/plugin-api'

import {VhdxError} from './vhdx-layout.js'

/** The VHDX reader's own errors become catalog errors at the plugin's edge. */
export function toH2KError(error: unknown): unknown {
  if (!(error instanceof VhdxError)) return error
  const code = error.code === 'VHDX_CORRUPT' ? 'H2K_INPUT_CORRUPT' : error.code === 'VHDX_UNSUPPORTED' ? 'H2K_INPUT_UNSUPPORTED' : 'H2K_TOOL_FAILED'
  return new H2KError(code, error.message, {cause: error, details: {vhdxError: error.code}})
}
