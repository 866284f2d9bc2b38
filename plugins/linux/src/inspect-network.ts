import {type GuestSession, type Inspection, type InspectionRisk, type NicConfig} from '@hyper2kvm/plugin-api'

import {factsOrRisk} from './facts-or-risk.js'
import {readNetworkFiles} from './network-files.js'
import {bindingsOf, pinsOf} from './network-model.js'
import {isPhysicalNicName} from './transforms/index.js'

/**
 * INSPECT's network facts: every interface the guest's network configuration binds, and a risk when those
 * bindings (a VMware slot name, a MAC, a rename by MAC) will not find the virtio NIC as they are. Refused files
 * (symlinks, oversized) are reported by fixer:network, which reuses this read.
 */
export async function inspectNetwork(session: GuestSession): Promise<{network: {interfaces: NicConfig[]}; risks: InspectionRisk[]}> {
  const {files} = await readNetworkFiles(session)
  const interfaces = files.flatMap(bindingsOf)
  const pins = files.flatMap(pinsOf)
  const names = [...new Set([...interfaces, ...pins].map((b) => b.name).filter((n): n is string => n !== undefined && isPhysicalNicName(n)))]
  const byMac = interfaces.some((i) => i.mac !== undefined) || pins.length > 0
  const risks: InspectionRisk[] = []
  if (names.length > 0 || byMac) {
    const what = [names.length > 0 ? `by name (${names.join(', ')})` : '', byMac ? 'by MAC' : ''].filter(Boolean).join(' and ')
    risks.push({code: 'NIC_BOUND_TO_SOURCE', message: `The network configuration binds NICs ${what}; on KVM the virtio NIC has another name and, unless MACs are kept, another MAC (fixer:network rebinds them).`})
  }
  return {network: {interfaces}, risks}
}

/** The risk that says the guest's network configuration could not be read; fixer:network does not run then. */
export const NETWORK_UNKNOWN = 'NETWORK_UNKNOWN'

/** Network facts, or a risk saying they are unknown (factsOrRisk): then fixer:network does not run. */
export async function addNetwork(session: GuestSession, inspection: Inspection): Promise<void> {
  await factsOrRisk(
    inspection,
    async () => {
      const network = await inspectNetwork(session)
      inspection.network = network.network
      inspection.risks.push(...network.risks)
    },
    {code: NETWORK_UNKNOWN, message: 'The network configuration could not be inspected (the appliance refused a request on the guest\'s files): fixer:network does not run.'},
  )
}
