import {Flags} from '@oclif/core'

/** The flags every command that talks to the daemon's REST API shares (jobs, dlq, schedule). */
export const apiFlags = {
  url: Flags.string({description: "The daemon's API, e.g. http://127.0.0.1:8080 (default: api.address and api.port of --config, else http://127.0.0.1:8080).", helpGroup: 'API'}),
  'token-file': Flags.file({description: 'A file holding the API token (mode 0600; default: HYPER2KVM_API_TOKEN, else api.token of --config through its secret sources).', helpGroup: 'API'}),
}
