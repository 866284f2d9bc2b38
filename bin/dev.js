#!/usr/bin/env -S node --import tsx --no-warnings
// Runs the TypeScript sources directly (no build) for development: ./bin/dev.js convert disk.vmdk
import './no-inspector-signal.js'
import {execute} from '@oclif/core'

import {routeArgv} from '../src/config-route.ts'

// `hyper2kvm --config FILE` (no command) runs the daemon when FILE says `command: daemon`.
const args = await routeArgv(process.argv.slice(2))
if (args) await execute({args, development: true, dir: import.meta.url})
