import {
  type BlockdevSpec,
  H2KError,
  type LoaderStage,
  formatNode,
  imageInfo,
  resolveContainedFile,
  safeFileStem,
} from 'hyper2kvm/plugin-api'
import {stat} from 'node:fs/promises'
import {basename, dirname, extname} from 'node:path'

const MAX_CHAIN = 16
const BACKING_FORMATS = new Set(['qcow2', 'raw'])

/**
 * qcow2 inputs. A backing file is refused unless the user passed --allow-backing and it sits inside the
 * input's directory with its format recorded in the header; then the chain is opened with explicit
 * formats and flattened by the conversion.
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
      const info = await imageInfo(formatNode('qcow2', path), {sandbox: ctx.job.sandbox, signal: ctx.signal})
      const backing = info['backing-filename']
      if (!backing) return formatNode('qcow2', path)
      if (!ctx.job.allowBacking) {
        throw new H2KError('H2K_UNSAFE_BACKING', `${basename(path)} has a backing file "${backing}"; backing files are refused by default.`, {
          details: {backing, image: path},
          suggestions: ['If the backing file is yours and sits next to the image, pass --allow-backing to flatten the chain.', 'Or flatten it first: qemu-img convert -O qcow2 in.qcow2 flat.qcow2'],
        })
      }
      if (depth >= MAX_CHAIN) throw new H2KError('H2K_INPUT_UNSUPPORTED', `The backing chain of ${basename(ctx.input.path)} is deeper than ${MAX_CHAIN}.`)
      const parent = await resolveContainedFile(dirname(path), backing, {referrer: basename(path), what: 'backing file'}).catch((error: unknown) => {
        if (error instanceof H2KError && error.code === 'H2K_UNSAFE_PATH') throw new H2KError('H2K_UNSAFE_BACKING', error.message, {cause: error, details: error.details})
        throw error
      })
      if (chain.includes(parent)) throw new H2KError('H2K_UNSAFE_BACKING', `The backing chain of ${basename(ctx.input.path)} loops back to ${basename(parent)}.`)
      const parentFormat = info['backing-filename-format']
      if (!parentFormat || !BACKING_FORMATS.has(parentFormat)) {
        throw new H2KError('H2K_UNSAFE_BACKING', `${basename(path)} does not record its backing format as qcow2 or raw (${parentFormat ?? 'none'}); hyper2kvm never lets qemu guess a format.`, {
          suggestions: [`Record it: qemu-img rebase -u -b ${backing} -F qcow2 ${basename(path)}`],
        })
      }
      if (parentFormat === 'raw') {
        chain.push(parent)
        return formatNode('qcow2', path, formatNode('raw', parent))
      }
      return formatNode('qcow2', path, await open(parent, depth + 1))
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
