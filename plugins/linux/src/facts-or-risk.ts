import {H2KError, type Inspection, type InspectionRisk} from '@hyper2kvm/plugin-api'

/**
 * Run one optional part of inspection; when the appliance refuses a request on the guest's files
 * (H2K_GUEST_FAILED, e.g. a listing larger than its reply limit), the guest is still converted and fixed:
 * `risk` is added instead (it names the fixer that will not run). The appliance's message is not repeated:
 * it can name the guest's files. Any other error still fails the inspection.
 */
export async function factsOrRisk(inspection: Inspection, part: () => Promise<void>, risk: InspectionRisk): Promise<void> {
  try {
    await part()
  } catch (error) {
    if (!(error instanceof H2KError) || error.code !== 'H2K_GUEST_FAILED') throw error
    inspection.risks.push(risk)
  }
}
