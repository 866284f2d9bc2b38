// Placeholder: implemented by the VMware loader work (validateSparseVmdk). Do not use yet.
export interface SparseVmdkFacts {
  subformat: 'monolithicSparse' | 'streamOptimized' | 'sparse'
  capacityBytes: number
  /** The embedded descriptor text, when the header points at one. */
  embeddedDescriptor?: string
}

export async function validateSparseVmdk(_file: string, _window?: {offset: number; size: number}): Promise<SparseVmdkFacts> {
  throw new Error('not implemented yet')
}
