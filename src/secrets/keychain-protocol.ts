/** The one request a keychain child answers, and its answer (JSON over its stdin and stdout). */
export type KeychainRequest =
  | {op: 'get'; service: string; names: string[]}
  | {op: 'set'; service: string; name: string; value: string}
  | {op: 'delete'; service: string; name: string}

export type KeychainAnswer = {ok: true; values?: Record<string, string | null>; deleted?: boolean} | {ok: false; message: string}
