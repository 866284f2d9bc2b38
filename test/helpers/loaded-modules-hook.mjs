// A `node --import` preload that records every module the process loads, one absolute path per line, in
// $H2K_LOADED_MODULES_FILE: ES modules through a `load` hook (module.register runs it on the loader thread),
// CommonJS ones through Module.prototype._compile (CommonJS required by CommonJS never reaches the hooks on
// Node 20). A module may appear twice (an ES module that is CommonJS underneath); readers deduplicate.
// Used by test/unit/startup-imports.test.ts; by hand: H2K_LOADED_MODULES_FILE=/tmp/m node --import ./test/helpers/loaded-modules-hook.mjs bin/run.js --help
import {appendFileSync} from 'node:fs'
import Module, {register} from 'node:module'
import {fileURLToPath} from 'node:url'
import {isMainThread} from 'node:worker_threads'

const file = process.env.H2K_LOADED_MODULES_FILE
// The main thread registers this same file as its hooks; on the loader thread (not the main one) only the hooks run.
if (file && isMainThread) {
  register(new URL(import.meta.url), {data: {file}})
  const compile = Module.prototype._compile
  Module.prototype._compile = function (content, filename) {
    appendFileSync(file, `${filename}\n`)
    return compile.call(this, content, filename)
  }
}

// Loader-thread side (module.register imports this same file there and calls initialize/load).
let output
export function initialize(data) {
  output = data.file
}

export async function load(url, context, nextLoad) {
  if (output && url.startsWith('file:')) appendFileSync(output, `${fileURLToPath(url)}\n`)
  return nextLoad(url, context)
}
