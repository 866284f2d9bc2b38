import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdirSync, readdirSync, statfsSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {scanGzipTar} from '@hyper2kvm/plugin-api/host'
import {isH2KError} from '@hyper2kvm/plugin-api'
import {craftTar} from '../helpers/tar-craft.js'
import {makeTempDir} from '../helpers/temp-dir.js'

const MiB = 1024 * 1024
const SIZE_MIB = 64
const RESERVE = 8 * MiB

/**
 * #9 finding 9: the decompression cap was "free space − reserve" computed by each job for itself, so two
 * bombs at once filled the filesystem. Two gzip'ed tars expanding at the same time into one small tmpfs
 * (64 MiB, as root) together must leave the reserve free: one is refused by the shared budget (not by
 * ENOSPC), and the free space never drops below the reserve while they run.
 */
describe('decompression: one expansion budget shared by concurrent archives', function () {
  this.timeout(60_000)
  let dir: string
  let cleanup: () => void
  let mnt: string
  before(function () {
    ;({cleanup, dir} = makeTempDir('h2k-budget-'))
    mnt = join(dir, 'small')
    mkdirSync(mnt)
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE_MIB}m,mode=0700`, 'h2k-budget', mnt])
  })
  after(() => {
    if (mnt) execFileSync('umount', [mnt])
    cleanup()
  })

  it('two 40 MiB bombs at once into 64 MiB: one is refused by the budget, the reserve stays free, nothing partial is left', async () => {
    const bombs = ['a', 'b'].map((name) => {
      const tar = join(dir, `${name}.tar`)
      writeFileSync(tar, craftTar([{data: Buffer.alloc(40 * MiB), name: `${name}.img`}]))
      writeFileSync(`${tar}.gz`, execFileSync('gzip', ['-c', tar]))
      return `${tar}.gz`
    })
    const free = (): number => {
      const fs = statfsSync(mnt)
      return fs.bavail * fs.bsize
    }
    let lowest = free()
    const watch = setInterval(() => (lowest = Math.min(lowest, free())), 2)
    const outcomes = await Promise.allSettled(bombs.map((gz, i) => scanGzipTar(gz, join(mnt, `copy-${i}.tar`), {reserveBytes: RESERVE})))
    clearInterval(watch)
    lowest = Math.min(lowest, free())

    const refused = outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason as unknown)
    assert.ok(refused.length >= 1, 'both fitted: the budget is not shared')
    for (const error of refused) {
      assert.ok(isH2KError(error), String(error))
      assert.equal(error.code, 'H2K_NO_SPACE')
      assert.equal(typeof error.details.limitBytes, 'number', `refused by the budget, not by a full filesystem: ${error.message}`)
    }
    assert.ok(lowest >= RESERVE - MiB, `the filesystem went down to ${(lowest / MiB).toFixed(1)} MiB free (reserve ${RESERVE / MiB} MiB)`)
    const kept = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [`copy-${i}.tar`] : []))
    assert.deepEqual(readdirSync(mnt).sort(), kept, 'a refused copy is removed')
    assert.equal(kept.length, 1, 'the space a refused one gives back lets the other finish (40 MiB fit, 80 do not)')
  })
})
