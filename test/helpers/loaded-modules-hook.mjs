// A `node --import` preload that records every module the process loads, one absolute path per line, in
// $H2K_LOADED_MODULES_FILE: ES modules through a `load` hook (module.register runs it on the loader thread),
// CommonJS ones through Module.prototype._compile (CommonJS required by CommonJS never reaches the hooks on
// Node 20). A module may appear twice (an ES module that is CommonJS underneath); readers deduplicate.
// Used by test/unit/startup-imports.test.ts and bench/startup.mjs to see which packages a command pulls in.
import {appendFileSync} from 'node:fs'
import Module, {register} from 'node:module'
import {fileURLToPath} from 'node:url'

const file = process.env.H2K_LOADED_MODULES_FILE
if (file) {
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
