import {
  type BlockdevSpec,
  H2KError,
  type LoaderStage,
  formatNode,
  readQcow2References,
  resolveContainedFile,
  safeFileStem,
} from '@hyper2kvm/plugin-api'
import {stat} from 'node:fs/promises'
import {basename, dirname, extname} from 'node:path'

const MAX_CHAIN = 16
const BACKING_FORMATS = new Set(['qcow2', 'raw'])

/** A file a qcow2 header names, resolved inside the image's folder; an unsafe name is H2K_UNSAFE_BACKING. */
async function containedReference(path: string, name: string, what: string, suggestions?: string[]): Promise<string> {
  return resolveContainedFile(dirname(path), name, {referrer: basename(path), what}).catch((error: unknown) => {
    if (error instanceof H2KError && error.code === 'H2K_UNSAFE_PATH') {
      throw new H2KError('H2K_UNSAFE_BACKING', error.message, {cause: error, details: error.details, ...(suggestions ? {suggestions} : {})})
    }
    throw error
  })
}

const DATA_FILE_SUGGESTIONS = [
  'Keep the data file next to the image under a plain name: qemu-img amend -f qcow2 -o data_file=NAME image.qcow2',
  'Or fold the data into the image on a trusted machine: qemu-img convert -O qcow2 image.qcow2 self-contained.qcow2',
]

/**
 * The external data file of a qcow2 image, read from its header by our own code before qemu opens it. qemu
 * resolves a relative name against its working directory and an absolute one anywhere, so the file is
 * accepted only when it sits inside the image's folder, and is then passed to qemu explicitly.
 */
async function pinnedDataFile(path: string): Promise<string | undefined> {
  const header = await readQcow2References(path, basename(path))
  if (!header.externalData) return undefined
  if (header.dataFile === undefined) {
    throw new H2KError('H2K_INPUT_CORRUPT', `${basename(path)} says its data lives in an external data file but does not name one.`, {details: {image: path}})
  }
  return containedReference(path, header.dataFile, 'external data file', DATA_FILE_SUGGESTIONS)
}

/**
 * qcow2 inputs. A backing file is refused unless the user passed --allow-backing and it sits inside the
 * input's directory with its format recorded in the header; then the chain is opened with explicit
 * formats and flattened by the conversion. An external data file is accepted only inside the input's
 * directory and is passed to qemu explicitly (`data-file`).
 */
export const qcow2Loader: LoaderStage = {
  description: 'qcow2 images; backing chains only with --allow-backing and inside the input directory',
  formats: ['qcow2'],
  kind: 'loader',
  name: 'qcow2',
  probe(input) {
    if (!input.isDirectory && input.head.length >= 4 && input.head.readUInt32BE(0) === 0x514649fb) return {by: 'content', format: 'qcow2'}
    return null
  },
  async run(ctx) {
    const chain: string[] = []
    const open = async (path: string, depth: number): Promise<BlockdevSpec> => {
      chain.push(path)
      const dataFile = await pinnedDataFile(path)
      if (dataFile !== undefined) chain.push(dataFile)
      const pins = dataFile === undefined ? {} : {dataFile}
      const info = await ctx.imageInfo(formatNode('qcow2', path, null, pins))
      const backing = info['backing-filename']
      if (!backing) return formatNode('qcow2', path, null, pins)
      if (!ctx.job.allowBacking) {
        throw new H2KError('H2K_UNSAFE_BACKING', `${basename(path)} has a backing file "${backing}"; backing files are refused by default.`, {
          details: {backing, image: path},
          suggestions: ['If the backing file is yours and sits next to the image, pass --allow-backing to flatten the chain.', 'Or flatten it first: qemu-img convert -O qcow2 in.qcow2 flat.qcow2'],
        })
      }
      if (depth >= MAX_CHAIN) throw new H2KError('H2K_INPUT_UNSUPPORTED', `The backing chain of ${basename(ctx.input.path)} is deeper than ${MAX_CHAIN}.`)
      const parent = await containedReference(path, backing, 'backing file')
      if (chain.includes(parent)) throw new H2KError('H2K_UNSAFE_BACKING', `The backing chain of ${basename(ctx.input.path)} loops back to ${basename(parent)}.`)
      const parentFormat = info['backing-filename-format']
      if (!parentFormat || !BACKING_FORMATS.has(parentFormat)) {
        throw new H2KError('H2K_UNSAFE_BACKING', `${basename(path)} does not record its backing format as qcow2 or raw (${parentFormat ?? 'none'}); hyper2kvm never lets qemu guess a format.`, {
          suggestions: [`Record it: qemu-img rebase -u -b ${backing} -F qcow2 ${basename(path)}`],
        })
      }
      if (parentFormat === 'raw') {
        chain.push(parent)
        return formatNode('qcow2', path, formatNode('raw', parent), pins)
      }
      return formatNode('qcow2', path, await open(parent, depth + 1), pins)
    }
    const spec = await open(ctx.input.path, 0)
    const sizes = await Promise.all(chain.map(async (file) => (await stat(file)).size))
    return {
      disks: [{allocatedBytes: sizes.reduce((a, b) => a + b, 0), files: chain, format: 'qcow2', label: basename(ctx.input.path), spec}],
      format: 'qcow2',
      input: ctx.input.path,
      name: safeFileStem(basename(ctx.input.path, extname(ctx.input.path))),
      notes: chain.length > 1 ? [`flattened a backing chain of ${chain.length} images`] : [],
    }
  },
}
