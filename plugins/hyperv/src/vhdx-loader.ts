import {
  type BlockdevSpec,
  H2KError,
  type LoaderContext,
  type LoaderStage,
  formatNode,
  resolveContainedFile,
  safeFileStem,
  specFiles,
} from '@hyper2kvm/plugin-api'
import {stat} from 'node:fs/promises'
import {basename, dirname, extname, join} from 'node:path'

import {toH2KError} from './vhdx-errors.js'
import {buildDifferencingOverlay} from './vhdx-flatten.js'
import {type VhdxLayout, readVhdxLayout} from './vhdx-layout.js'

const MAX_CHAIN = 16

async function layoutOf(path: string): Promise<VhdxLayout> {
  try {
    return await readVhdxLayout(path)
  } catch (error) {
    throw toH2KError(error)
  }
}

/**
 * Find a differencing disk's parent the way Hyper-V records it: `relative_path` first, then the file name
 * of `absolute_win32_path` next to the child (VMs copied off a Hyper-V host keep their files together).
 * A parent outside the child's directory is refused.
 */
async function locateParent(child: string, locator: Record<string, string>): Promise<string> {
  const referrer = basename(child)
  const candidates = [locator.relative_path, locator.absolute_win32_path?.split(/[\\/]/).pop()]
    .filter((name): name is string => typeof name === 'string' && name.length > 0)
    .map((name) => name.replaceAll('\\', '/').replace(/^(\.\/)+/, ''))
  if (candidates.length === 0) throw new H2KError('H2K_INPUT_CORRUPT', `${referrer} is a differencing disk without a usable parent locator.`)
  let missing: unknown
  for (const name of candidates) {
    try {
      return await resolveContainedFile(dirname(child), name, {referrer, what: 'parent disk'})
    } catch (error) {
      if (error instanceof H2KError && error.code === 'H2K_UNSAFE_PATH') {
        throw new H2KError('H2K_UNSAFE_BACKING', error.message, {cause: error, details: error.details, suggestions: ['Copy the parent .vhdx next to the .avhdx, or merge the chain in Hyper-V first.']})
      }
      missing = error
    }
  }
  throw missing
}

/**
 * Hyper-V VHDX. A differencing disk (.avhdx, any depth) is flattened onto its parent: the child's present
 * sectors are written by qemu-io into a qcow2 overlay in the work directory whose backing is the parent,
 * because qemu cannot read differencing VHDX itself. Nothing is written next to the input.
 */
export const vhdxLoader: LoaderStage = {
  description: 'Hyper-V VHDX, and differencing AVHDX chains (flattened)',
  formats: ['vhdx', 'avhdx'],
  kind: 'loader',
  name: 'vhdx',
  probe(input) {
    if (input.isDirectory || input.head.subarray(0, 8).toString('latin1') !== 'vhdxfile') return null
    return {by: 'content', format: 'vhdx'}
  },
  async run(ctx: LoaderContext) {
    const chain: string[] = []
    const open = async (path: string): Promise<BlockdevSpec> => {
      chain.push(path)
      const layout = await layoutOf(path)
      if (!layout.hasParent) return formatNode('vhdx', path)
      if (chain.length > MAX_CHAIN) throw new H2KError('H2K_INPUT_UNSUPPORTED', `The differencing chain of ${basename(ctx.input.path)} is deeper than ${MAX_CHAIN}.`)
      const parentPath = await locateParent(path, layout.parentLocator ?? {})
      if (chain.includes(parentPath)) throw new H2KError('H2K_UNSAFE_BACKING', `The differencing chain of ${basename(ctx.input.path)} loops back to ${basename(parentPath)}.`)
      const linkage = layout.parentLocator?.parent_linkage?.replace(/[{}]/g, '').toLowerCase()
      const parentGuid = (await layoutOf(parentPath)).dataWriteGuid.replace(/[{}]/g, '').toLowerCase()
      if (linkage && linkage !== parentGuid) {
        throw new H2KError('H2K_INPUT_CORRUPT', `${basename(path)} was made from a different state of ${basename(parentPath)} (parent linkage ${linkage}, parent data ${parentGuid}).`, {
          suggestions: ['The parent was modified after the checkpoint was taken; export the VM again from Hyper-V.'],
        })
      }
      const parentSpec = await open(parentPath)
      const overlayPath = join(ctx.workDir, `flatten-${chain.indexOf(path)}-${safeFileStem(basename(path))}.qcow2`)
      try {
        await buildDifferencingOverlay({
          child: path,
          onProgress: (bytesDone) => ctx.report({bytesDone, bytesTotal: layout.virtualSize, message: `flattening ${basename(path)}`}),
          overlayPath,
          parentSpec,
          run: (tool, args, extra) => ctx.exec(tool, args, {cwd: extra.cwd, input: extra.input, sandbox: {readOnly: specFiles(parentSpec), readWrite: extra.writes}}),
          signal: ctx.signal,
        })
      } catch (error) {
        throw toH2KError(error)
      }
      return formatNode('qcow2', overlayPath, parentSpec)
    }
    const spec = await open(ctx.input.path)
    const sizes = await Promise.all(chain.map(async (file) => (await stat(file)).size))
    const differencing = chain.length > 1
    return {
      disks: [{allocatedBytes: sizes.reduce((a, b) => a + b, 0), files: chain, format: 'vhdx', label: basename(ctx.input.path), spec, subformat: differencing ? 'differencing' : undefined}],
      format: 'vhdx',
      input: ctx.input.path,
      name: safeFileStem(basename(ctx.input.path, extname(ctx.input.path))),
      notes: differencing ? [`flattened a differencing chain of ${chain.length} VHDX files`] : [],
      subformat: differencing ? 'differencing' : undefined,
    }
  },
}
