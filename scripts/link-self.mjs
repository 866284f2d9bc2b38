// Plugins import the host's public API as `hyper2kvm/plugin-api`, exactly as a third-party plugin would.
// npm does not link a workspace root into its own node_modules, so the build links it once.
import {lstat, mkdir, readlink, symlink, unlink} from 'node:fs/promises'
import {dirname, join, relative, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const link = join(root, 'node_modules', 'hyper2kvm')
const target = relative(dirname(link), root)
await mkdir(dirname(link), {recursive: true})
const current = await lstat(link).then((s) => (s.isSymbolicLink() ? readlink(link) : 'not-a-link'), () => null)
if (current !== target) {
  if (current !== null) await unlink(link)
  await symlink(target, link, 'dir')
}
