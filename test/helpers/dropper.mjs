// The unprivileged dropper of the hostile-drop tests: run under `setpriv --reuid=65534 …`, it performs the
// file operations a case lists (JSON on argv[2]) — nothing else. Plain ESM so that `nobody` can run it
// with bare node (no tsx, no node_modules).
import {copyFileSync, mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {dirname} from 'node:path'

for (const step of JSON.parse(process.argv[2])) {
  if (step.op !== 'mkdir') mkdirSync(dirname(step.path), {recursive: true})
  if (step.op === 'symlink') symlinkSync(step.target, step.path)
  else if (step.op === 'write') writeFileSync(step.path, step.text)
  else if (step.op === 'copy') copyFileSync(step.from, step.path)
  else if (step.op === 'mkdir') mkdirSync(step.path, {recursive: true})
  else throw new Error(`unknown dropper op ${step.op}`)
}
