import assert from 'node:assert/strict'

import {H2KError, type Inspection} from '@hyper2kvm/plugin-api'

import {addVmwareTools} from '../../../plugins/linux/src/inspect-guest.js'
import {installedDebs} from '../../../plugins/linux/src/vmware-tools-facts.js'

import {MemoryGuest} from '../../helpers/memory-guest.js'
import {type GuestHands, checkCase, plantCase, toolsCases} from '../../helpers/vmware-tools-cases.js'

function handsOn(guest: MemoryGuest): GuestHands {
  return {
    content: async (path) => guest.file(path) ?? null,
    present: async (path) => guest.nodes.has(path),
    readLink: async (path) => guest.link(path),
  }
}

/**
 * The VMware Tools cases (test/unit/linux/vmware-tools-cases/, one folder each; the format is in
 * test/helpers/vmware-tools-cases.ts) on an in-memory guest. Here, beyond what each case states, nothing of
 * the guest may change that no recorded change names. test/integration/vmware-tools-appliance.test.ts runs
 * the same cases in a real libguestfs appliance.
 */
describe('VMware Tools: inspection facts and fixer:vmware-tools on in-memory guests (one case per folder)', () => {
  for (const c of toolsCases()) {
    it(c.name, async () => {
      const guest = new MemoryGuest()
      plantCase(c, {dir: (path) => guest.plantDir(path), file: (path, text) => guest.plantFile(path, text), link: (path, target) => guest.plantSymlink(path, target)})
      const hands = handsOn(guest)
      const before = new Map(guest.nodes)
      const named = new Set([...c.expect.changes.map((ch) => ch.path), ...c.expected.keys(), ...Object.keys(c.expect.links ?? {}), ...(c.expect.absent ?? [])])
      await checkCase(c, guest, hands, () => guest.requests)
      for (const [path, node] of before) if (!named.has(path)) assert.deepEqual(guest.nodes.get(path), node, `${path} must be left as it was`)
      for (const path of guest.nodes.keys()) assert.ok(before.has(path) || named.has(path), `${path} appeared, and no change or expectation names it`)
    })
  }
})

describe('VMware Tools inspection when the appliance refuses a request', () => {
  /** A guest whose /etc/systemd/system listing is too large for the appliance's reply (its message names a file). */
  class HugeListingGuest extends MemoryGuest {
    override async call(command: string, ...args: string[]): Promise<string> {
      if (command === 'ls') throw new H2KError('H2K_GUEST_FAILED', 'guestfish ls failed: SECRET-NAME: reply message too large')
      return super.call(command, ...args)
    }
  }

  it('records VMWARE_TOOLS_UNKNOWN without the appliance\'s message, leaves vmwareTools unset (the fixer does not run), and the job goes on', async () => {
    const guest = new HugeListingGuest()
    guest.plantFile('/var/lib/dpkg/status', 'Package: open-vm-tools\nStatus: install ok installed\n')
    guest.plantDir('/etc/systemd/system')
    const inspection = {risks: []} as unknown as Inspection
    await addVmwareTools(guest, inspection)
    assert.equal(inspection.vmwareTools, undefined)
    assert.deepEqual(inspection.risks.map((r) => r.code), ['VMWARE_TOOLS_UNKNOWN'])
    assert.doesNotMatch(inspection.risks[0]!.message, /SECRET/)
  })

  it('anything else (a cancelled job, a bug) still fails the inspection', async () => {
    class Broken extends MemoryGuest {
      override async call(): Promise<string> {
        throw new H2KError('H2K_CANCELLED', 'cancelled')
      }
    }
    await assert.rejects(addVmwareTools(new Broken(), {risks: []} as unknown as Inspection), /cancelled/)
  })
})

describe('dpkg status parsing stays linear in what the guest wrote', () => {
  it('a Status line of 200 000 blanks between words is read in well under a second (a lazy capture took minutes)', () => {
    const status = `Package: open-vm-tools\nStatus: install${' '.repeat(200_000)}x\n\nPackage: qemu-guest-agent\nStatus: install ok installed   \n`
    const started = Date.now()
    const installed = installedDebs(status, ['open-vm-tools', 'qemu-guest-agent'])
    assert.ok(Date.now() - started < 500, `${Date.now() - started} ms`)
    assert.deepEqual([...installed], ['qemu-guest-agent'])
  })
})
