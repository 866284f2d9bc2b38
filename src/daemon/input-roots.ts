import {H2KError} from '@hyper2kvm/plugin-api'
import {relativeInside} from '@hyper2kvm/plugin-api/host'
import {realOrSelf} from '../fs/real-or-self.js'

/**
 * What a dropped item may make the daemon read: files of its own claim, and files under the
 * configured allowed_input_dirs. Symlinks are followed before deciding, so a link dropped into the inbox
 * (or a job file naming /etc/shadow) cannot turn the daemon into a reader of any file its user can read.
 */
export async function checkInputAllowed(input: string, claim: string, allowedDirs: readonly string[]): Promise<void> {
  const real = await realOrSelf(input)
  const roots = [await realOrSelf(claim), ...(await Promise.all(allowedDirs.map(realOrSelf)))]
  if (roots.some((root) => relativeInside(root, real) !== undefined)) return
  // Where a symlink points is not said (nor recorded): the message names only what the item itself named.
  throw new H2KError('H2K_UNSAFE_PATH', `${input}${real === input ? '' : ' (a symbolic link, or a path through one)'} is outside what a dropped item may read: its own files${allowedDirs.length > 0 ? ` and ${allowedDirs.join(', ')}` : ''}.`, {
    details: {allowedInputDirs: allowedDirs, input},
    suggestions: ['Drop the disk itself (or put it in a subdirectory of the drop directory next to the job file), or add its directory to allowed_input_dirs in the daemon configuration.'],
  })
}
