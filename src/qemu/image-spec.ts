import type {BlockdevSpec} from '../stages/stage-types.js'

/** Formats whose qemu drivers can have a backing file; we always state their backing (or null) explicitly. */
const BACKING_CAPABLE = new Set(['qcow2', 'qcow', 'vmdk', 'qed'])

/** A host file opened read-only through qemu's `file` protocol. */
export function fileNode(filename: string): BlockdevSpec {
  return {driver: 'file', filename}
}

/**
 * An image of a known format on a host file (or any protocol node). Formats that could name a backing
 * file get `backing: null` unless a backing spec is given, so a hostile header can never make qemu open
 * a file we did not choose.
 */
export function formatNode(driver: string, file: BlockdevSpec | string, backing?: BlockdevSpec | null): BlockdevSpec {
  const spec: BlockdevSpec = {driver, file: typeof file === 'string' ? fileNode(file) : file}
  if (backing !== undefined && backing !== null) spec.backing = backing
  else if (BACKING_CAPABLE.has(driver)) spec.backing = null
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

/** Every host file a spec reads (for safety checks and reports). */
export function specFiles(spec: unknown): string[] {
  if (typeof spec !== 'object' || spec === null) return []
  const node = spec as Record<string, unknown>
  const own = node.driver === 'file' && typeof node.filename === 'string' ? [node.filename] : []
  return [...own, ...Object.values(node).flatMap((value) => specFiles(value))]
}

/**
 * The layers of a spec, top first, each on its own with `backing: null`: `qemu-img info` and `check`
 * open images without their backing, so they must be given one layer at a time.
 */
export function chainLayers(spec: BlockdevSpec): BlockdevSpec[] {
  const layers: BlockdevSpec[] = []
  let node: BlockdevSpec | undefined = spec
  while (node) {
    const {backing, ...rest}: BlockdevSpec = node
    layers.push(BACKING_CAPABLE.has(node.driver) ? {...rest, backing: null} : rest)
    node = typeof backing === 'object' && backing !== null ? (backing as BlockdevSpec) : undefined
  }
  return layers
}
