import assert from 'node:assert/strict'

import type {Inspection, PipelineStage} from '@hyper2kvm/plugin-api'

/**
 * The Inspection contract grows append-only, and what it gains is optional: an inspector written against
 * an older @hyper2kvm/plugin-api must still compile (`tsc -p tsconfig.test.json` type-checks this file).
 */
describe('the Inspection contract stays open to inspectors written before a field existed', () => {
  it('an inspector that never heard of `partitioned` compiles and its inspection reads as partitioned', async () => {
    const older: PipelineStage = {
      description: 'a third-party inspector from before #12',
      kind: 'inspector',
      name: 'older',
      async run(ctx) {
        const inspection: Inspection = {firmware: 'bios', fstab: [], kernels: [], luks: false, lvm: false, mountpoints: {'/': '/dev/sda1'}, os: 'linux', raid: false, risks: []}
        ctx.inspection = inspection
      },
    }
    const ctx = {} as Parameters<PipelineStage['run']>[0]
    await older.run(ctx)
    // The host's one reader (inspect's summary line) treats only `false` as "no partition table".
    assert.notEqual(ctx.inspection?.partitioned, false)
  })
})
