import {execFileSync} from 'node:child_process'
import {mkdirSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {chooseAccel, libguestfsEnv} from '../../src/guest/accel.js'
import {GuestfishSession} from '../../src/guest/guestfish-session.js'
import {makeTempDir} from '../helpers/temp-dir.js'
import {type GuestHands, checkCase, plantCase, toolsCases} from '../helpers/vmware-tools-cases.js'

function handsOn(session: GuestfishSession): GuestHands {
  const isTrue = async (command: string, path: string) => (await session.call(command, path)).trim() === 'true'
  return {
    content: (path) => session.readFile(path),
    present: async (path) => (await isTrue('is-symlink', path)) || (await session.exists(path)),
    readLink: async (path) => ((await isTrue('is-symlink', path)) ? (await session.call('readlink', path)).trim() : undefined),
  }
}

/**
 * The same VMware Tools cases as test/unit/linux/vmware-tools.test.ts, in a real libguestfs appliance
 * (one appliance, a fresh ext4 filesystem per case): what the in-memory guest models (links followed or
 * not, glob-expand, realpath, ln-sf, mv) is what guestfish does, and the hostile cases hold on the real thing.
 */
describe('VMware Tools cases in a real libguestfs appliance', function () {
  this.timeout(600_000)
  let dir: string
  let cleanup: () => void
  let session: GuestfishSession
  const abort = new AbortController()

  before(async () => {
    ;({cleanup, dir} = makeTempDir('h2k-vmtools-appliance-'))
    const disk = join(dir, 'guest.raw')
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', disk, '128M'])
    // The host's cached verdict, as a job would use it.
    const {accel} = await chooseAccel({preference: 'auto'})
    session = await GuestfishSession.launch({drives: [{format: 'raw', path: disk}], env: libguestfsEnv(accel), scratch: dir, signal: abort.signal})
  })
  after(async () => {
    await session?.close()
    cleanup()
  })

  for (const c of toolsCases()) {
    it(c.name, async () => {
      await session.call('umount-all')
      await session.call('mkfs', 'ext4', '/dev/sda')
      await session.call('mount', '/dev/sda', '/')
      // The guest is built in a host directory (its links are only ever stored, never followed here) and
      // unpacked into the fresh filesystem with one tar-in.
      const tree = join(dir, 'tree')
      rmSync(tree, {force: true, recursive: true})
      const at = (path: string) => join(tree, path)
      plantCase(c, {
        dir: (path) => mkdirSync(at(path), {recursive: true}),
        file: (path, text) => {
          mkdirSync(dirname(at(path)), {recursive: true})
          writeFileSync(at(path), text)
        },
        link: (path, target) => {
          mkdirSync(dirname(at(path)), {recursive: true})
          symlinkSync(target, at(path))
        },
      })
      execFileSync('tar', ['-C', tree, '-cf', join(dir, 'tree.tar'), '.'])
      await session.call('tar-in', join(dir, 'tree.tar'), '/')
      await checkCase(c, session, handsOn(session))
    })
  }
})
