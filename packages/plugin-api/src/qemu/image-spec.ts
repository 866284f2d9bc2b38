import type {BlockdevSpec} from '../contract/stage-types.js'

/**
 * What each qemu format driver we hand untrusted bytes to may open *from inside the image*, and how a
 * spec pins it. This table is the one place that knowledge lives: formatNode() builds every node from it,
 * refuses a driver that is not in it, and describe-disks checks every loader's spec against it.
 *
 * - backing: the driver follows a backing file named in the image. formatNode() always states `backing`
 *   (null unless the loader resolved one), so qemu never opens a name from the header.
 * - dataFile: qcow2's external data file (incompatible bit 2 + header extension). qemu cannot be told
 *   "no data file" (`data-file: null` still opens the header's name, relative to qemu's working
 *   directory), so an image that has one is refused unless the loader resolved it inside the input's
 *   directory and passed it as `data-file` (a file node); describe-disks refuses any other.
 * - descriptorExtents: vmdk follows the extent names of a text descriptor and of a sparse header with
 *   capacity 0 (a descriptor wrapped in a header, found through the FIRST header even when the footer
 *   disagrees). Loaders hand qemu only descriptors they wrote (extents resolved, absolute) or sparse files
 *   validateSparseVmdk() accepted (first header and footer agree, capacity > 0); describe-disks re-checks
 *   the first header of every vmdk node on an input file.
 * - vpc (VHD), vhdx, vdi and raw open nothing else: qemu does not follow VHD/VHDX parent locators
 *   (differencing disks are flattened by our own code first), and raw reads only its `file` window.
 * - qcow and qed can name backing files too; no loader emits them (a QED input is refused).
 */
export interface DriverReferences {
  backing: boolean
  dataFile: boolean
  descriptorExtents: boolean
}

export const DRIVER_REFERENCES: Readonly<Record<string, DriverReferences>> = {
  qcow: {backing: true, dataFile: false, descriptorExtents: false},
  qcow2: {backing: true, dataFile: true, descriptorExtents: false},
  qed: {backing: true, dataFile: false, descriptorExtents: false},
  raw: {backing: false, dataFile: false, descriptorExtents: false},
  vdi: {backing: false, dataFile: false, descriptorExtents: false},
  vhdx: {backing: false, dataFile: false, descriptorExtents: false},
  vmdk: {backing: true, dataFile: false, descriptorExtents: true},
  vpc: {backing: false, dataFile: false, descriptorExtents: false},
}

/** Protocol drivers a format node may sit on. */
const PROTOCOLS = new Set(['file'])

/** What a driver may open from inside an image; throws for a driver hyper2kvm has not vetted. */
export function driverReferences(driver: string): DriverReferences {
  const refs = DRIVER_REFERENCES[driver]
  if (!refs) throw new Error(`qemu format driver "${driver}" is not in DRIVER_REFERENCES: nobody has listed what it may open from inside an image`)
  return refs
}

/** Files a loader resolved for a node, beyond its own `file` and `backing`. */
export interface NodePins {
  /** qcow2 external data file, already resolved inside the input's directory. */
  dataFile?: string
}

/** A host file opened read-only through qemu's `file` protocol. */
export function fileNode(filename: string): BlockdevSpec {
  return {driver: 'file', filename}
}

/**
 * An image of a known format on a host file (or any protocol node). Everything the driver could open on
 * its own is stated: `backing` (null unless given) and, for qcow2, the `data-file` the loader resolved.
 */
export function formatNode(driver: string, file: BlockdevSpec | string, backing?: BlockdevSpec | null, pins: NodePins = {}): BlockdevSpec {
  const refs = driverReferences(driver)
  const spec: BlockdevSpec = {driver, file: typeof file === 'string' ? fileNode(file) : file}
  if (backing !== undefined && backing !== null) spec.backing = backing
  else if (refs.backing) spec.backing = null
  if (pins.dataFile !== undefined) {
    if (!refs.dataFile) throw new Error(`qemu format driver "${driver}" has no external data file`)
    spec['data-file'] = fileNode(pins.dataFile)
  }
  return spec
}

/** A window of a host file (an OVA member, an offset partition): raw protocol with offset and size. */
export function sliceNode(filename: string, offset: number, size: number): BlockdevSpec {
  return {driver: 'raw', file: fileNode(filename), offset, size}
}

/** The `json:` pseudo-filename qemu tools accept in place of a path. */
export function qemuFilename(spec: BlockdevSpec): string {
  return `json:${JSON.stringify(spec)}`
}

/** Every host file a spec reads (for safety checks and reports): `file`, `backing` and `data-file` nodes alike. */
export function specFiles(spec: unknown): string[] {
  if (typeof spec !== 'object' || spec === null) return []
  const node = spec as Record<string, unknown>
  const own = node.driver === 'file' && typeof node.filename === 'string' ? [node.filename] : []
  return [...own, ...Object.values(node).flatMap((value) => specFiles(value))]
}

/** Every format node of a spec (the node itself, its `file` chain, backing and data-file), for checks. */
export function formatNodes(spec: BlockdevSpec): BlockdevSpec[] {
  if (PROTOCOLS.has(spec.driver)) return []
  const nested = ['file', 'backing', 'data-file'].flatMap((key) => {
    const value = spec[key]
    return typeof value === 'object' && value !== null ? formatNodes(value as BlockdevSpec) : []
  })
  return [spec, ...nested]
}

/**
 * The layers of a spec, top first, each on its own with `backing: null`: `qemu-img info` and `check`
 * open images without their backing, so they must be given one layer at a time. A layer keeps its
 * pinned `data-file`.
 */
export function chainLayers(spec: BlockdevSpec): BlockdevSpec[] {
  const layers: BlockdevSpec[] = []
  let node: BlockdevSpec | undefined = spec
  while (node) {
    const {backing, ...rest}: BlockdevSpec = node
    layers.push(driverReferences(node.driver).backing ? {...rest, backing: null} : rest)
    node = typeof backing === 'object' && backing !== null ? (backing as BlockdevSpec) : undefined
  }
  return layers
}
