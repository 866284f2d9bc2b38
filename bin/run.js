#!/usr/bin/env node
import './no-inspector-signal.js'
import {execute} from '@oclif/core'

import {routeArgv} from '../dist/config-route.js'

// `hyper2kvm --config FILE` (no command) runs the daemon when FILE says `command: daemon`.
const args = await routeArgv(process.argv.slice(2))
if (args) await execute({args, dir: import.meta.url})
