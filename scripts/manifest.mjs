#!/usr/bin/env node
// Writes oclif.manifest.json (every command's id, flags, args, help texts and the file it lives in) from the
// built commands in dist/commands. With it, oclif answers `--help` and finds a command without importing all
// of them (~800 modules and 0.3 s without it, ~160 with it). `npm run build` runs this after tsc, so the
// manifest never lags behind dist: oclif trusts any manifest whose version matches package.json, in a dev
// checkout too, and would not see a new command or flag from a stale one.
//
// This is what `oclif manifest` does, with the @oclif/core we run on: the `oclif` package would add ~54 MB of
// dev dependencies for three calls, and its current major needs @oclif/core 5.
import {rmSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {Plugin} from '@oclif/core'

const root = resolve(fileURLToPath(new URL('..', import.meta.url)))
const target = join(root, 'oclif.manifest.json')

// Removed first: a failed run must not leave the previous manifest behind to describe other commands.
rmSync(target, {force: true})
const plugin = new Plugin({errorOnManifestCreate: true, ignoreManifest: true, isRoot: true, respectNoCacheDefault: true, root, type: 'core'})
await plugin.load()
const count = Object.keys(plugin.manifest.commands).length
if (count === 0) throw new Error(`no commands found under ${root}/dist/commands: run tsc first`)
writeFileSync(target, `${JSON.stringify(plugin.manifest, null, 2)}\n`)
if (!process.env.npm_config_loglevel?.match(/silent/)) console.error(`oclif.manifest.json: ${count} commands`)
