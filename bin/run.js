#!/usr/bin/env node
import './no-inspector-signal.js'
import {execute} from '@oclif/core'

import {routeArgv} from '../dist/config-route.js'

// `hyper2kvm --config FILE` (no command) runs the daemon when FILE says `command: daemon`.
const args = await routeArgv(process.argv.slice(2))
if (args) {
  await execute({args, dir: import.meta.url})
  // A plugin whose register hook timed out may still hold the event loop (a timer it set, a socket): the
  // command is done and that plugin was reported failed, so do not wait for it forever.
  const {abandonedHooks} = await import('../dist/stages/abandoned-hooks.js')
  if (abandonedHooks().length > 0) process.exit()
}
