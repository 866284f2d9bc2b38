import {lstat, readdir, realpath, stat} from 'node:fs/promises'
import {basename, dirname, extname, join} from 'node:path'

import {
  type DigestAlgorithm,
  describeDiskInFile,
  detectImageFormat,
  H2KError,
  isH2KError,
  type LoaderContext,
  type LoaderStage,
  peekTarNames,
  type ProbeInput,
  readAt,
  readBoundedText,
  resolveContainedFile,
  type SourceDisk,
  TEXT_LIMIT,
} from '@hyper2kvm/plugin-api'

import {fileDigests} from './file-digests.js'
import {openFlatVmdkDescriptor} from './flat-vmdk-descriptor.js'
import {algorithmsByName, checkManifest, parseManifest} from './manifest.js'
import {looksLikeOvf, parseOvfDescriptor} from './ovf-descriptor.js'
import {ovfSource, refuseStoredTransform, requireDisks} from './ovf-source.js'

const HEAD_BYTES = 64 * 1024

/** The single .ovf file of a directory, or null when there are none or several. */
async function onlyOvfIn(directory: string): Promise<string | null> {
  const entries = await readdir(directory, {withFileTypes: true})
  const ovfs = entries.filter((entry) => entry.isFile() && /\.ovf$/i.test(entry.name))
  return ovfs.length === 1 && ovfs[0] ? join(directory, ovfs[0].name) : null
}

function isOvfText(head: Buffer): boolean {
  // An OVA carries the same text 512 bytes in; it is the OVA loader's, so a tar never counts as OVF.
  if (peekTarNames(head) !== null) return false
  const text = head.toString('utf8')
  return /^\uFEFF?\s*</.test(text) && looksLikeOvf(text)
}

async function descriptorPathFor(input: ProbeInput): Promise<string> {
  if (!input.isDirectory) return input.path
  const found = await onlyOvfIn(input.path)
  if (!found) throw new H2KError('H2K_INPUT_UNRECOGNIZED', `${input.path} does not contain exactly one .ovf descriptor.`, {details: {directory: input.path}})
  return found
}

/** Digests of every file the manifest lists; a listed file that is absent reads as undefined (a mismatch). */
async function verifyManifest(ctx: LoaderContext, directory: string, manifestPath: string): Promise<string> {
  const label = basename(manifestPath)
  const {size} = await stat(manifestPath)
  const entries = parseManifest(await readBoundedText(manifestPath, {offset: 0, size}, {code: 'H2K_MANIFEST_MISMATCH', label}), label)
  const digests = new Map<string, Partial<Record<DigestAlgorithm, string>>>()
  const wanted = [...algorithmsByName(entries)]
  const files: Array<{name: string; path: string; algorithms: DigestAlgorithm[]}> = []
  for (const [name, algorithms] of wanted) {
    try {
      files.push({algorithms, name, path: await resolveContainedFile(directory, name, {referrer: label, what: 'listed file'})})
    } catch (error) {
      // A missing file is a manifest mismatch; a name escaping the directory stays H2K_UNSAFE_PATH.
      if (!(isH2KError(error) && error.code === 'H2K_EXTENT_MISSING')) throw error
    }
  }
  const total = (await Promise.all(files.map(async (file) => (await stat(file.path)).size))).reduce((sum, bytes) => sum + bytes, 0)
  let done = 0
  for (const file of files) {
    digests.set(
      file.name,
      await fileDigests(file.path, file.algorithms, ctx.signal, (bytes) => {
        done += bytes
        ctx.report({bytesDone: done, bytesTotal: total, message: 'Verifying the OVF manifest', percent: total > 0 ? Math.floor((done * 100) / total) : 100})
      }),
    )
  }
  checkManifest(entries, (name) => digests.get(name), label)
  return `manifest ${label} verified: ${entries.length} ${[...new Set(entries.map((entry) => entry.algorithm.toUpperCase()))].join('/')} digests`
}

async function openDisk(path: string, label: string): Promise<{disk: Omit<SourceDisk, 'label' | 'allocatedBytes'>; bytes: number}> {
  const {size} = await stat(path)
  const head = await readAt(path, 0, Math.min(HEAD_BYTES, size))
  if (detectImageFormat(head) === 'vmdk-descriptor') {
    const opened = await openFlatVmdkDescriptor(path, head, label)
    const extentBytes = opened.files[1] ? (await stat(opened.files[1])).size : size
    return {bytes: extentBytes, disk: {files: opened.files, format: opened.format, spec: opened.spec, subformat: opened.subformat ?? 'monolithicFlat'}}
  }
  const found = await describeDiskInFile(path, {label})
  const disk: Omit<SourceDisk, 'label' | 'allocatedBytes'> = {files: [path], format: found.format, spec: found.spec}
  if (found.subformat !== undefined) disk.subformat = found.subformat
  return {bytes: size, disk}
}

/**
 * An unpacked OVF: the .ovf descriptor (or a directory holding exactly one) with its disk files beside
 * it. Every href must stay inside the descriptor's directory; a manifest next to it is verified.
 */
export const ovfLoader: LoaderStage = {
  description: 'OVF descriptors (or a directory with one .ovf): disks resolved next to the descriptor, .mf verified',
  formats: ['ovf'],
  kind: 'loader',
  name: 'ovf',

  async probe(input: ProbeInput) {
    if (input.isDirectory) {
      const found = await onlyOvfIn(input.path).catch(() => null)
      if (!found) return null
      return isOvfText(await readAt(found, 0, HEAD_BYTES)) ? {by: 'content', format: 'ovf'} : null
    }
    return isOvfText(input.head) ? {by: 'content', format: 'ovf'} : null
  },

  async run(ctx: LoaderContext) {
    const descriptorPath = await realpath(await descriptorPathFor(ctx.input))
    const directory = dirname(descriptorPath)
    const label = basename(descriptorPath)
    const {size} = await lstat(descriptorPath)
    if (size > TEXT_LIMIT) throw new H2KError('H2K_OVF_INVALID', `${label} is ${size} bytes, too large for an OVF descriptor.`)
    const descriptor = parseOvfDescriptor(await readBoundedText(descriptorPath, {offset: 0, size}, {code: 'H2K_OVF_INVALID', label}), label)
    requireDisks(descriptor, label)
    const diskPaths: string[] = []
    for (const disk of descriptor.disks) {
      refuseStoredTransform(disk.file, label)
      diskPaths.push(await resolveContainedFile(directory, disk.file.href, {referrer: label, what: `disk ${disk.id}`}))
    }

    const manifestName = `${basename(descriptorPath, extname(descriptorPath))}.mf`
    const manifestExists = await lstat(join(directory, manifestName)).then(
      () => true,
      () => false,
    )
    // A manifest that is there must be readable and inside the directory: a symlink out is refused, not skipped.
    const manifestPath = manifestExists ? await resolveContainedFile(directory, manifestName, {referrer: label, what: 'manifest'}) : undefined
    const notes = [manifestPath ? await verifyManifest(ctx, directory, manifestPath) : 'no manifest (.mf) next to the descriptor: digests not verified']

    const disks: SourceDisk[] = []
    for (const [index, disk] of descriptor.disks.entries()) {
      const path = diskPaths[index] as string
      const opened = await openDisk(path, `${disk.file.href} (disk ${disk.id} of ${label})`)
      disks.push({...opened.disk, allocatedBytes: opened.bytes, label: disk.id})
    }
    return ovfSource(ctx.input.path, 'ovf', descriptor, disks, notes, basename(descriptorPath, extname(descriptorPath)))
  },
}
