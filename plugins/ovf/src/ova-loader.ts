import {basename, extname, join} from 'node:path'

import {
  type DigestAlgorithm,
  describeDiskInFile,
  H2KError,
  isGzip,
  type LoaderContext,
  type LoaderStage,
  peekTarNames,
  readBoundedText,
  type ProbeInput,
  safeFileStem,
  scanArchive,
  scanTar,
  type SourceDisk,
  type TarMember,
  tarScanReporter,
} from '@hyper2kvm/plugin-api'

import {algorithmsByName, checkManifest, parseManifest} from './manifest.js'
import {memberNameForHref, memberNameOrUndefined} from './member-href.js'
import {type OvfDescriptor, parseOvfDescriptor} from './ovf-descriptor.js'
import {ovfSource, refuseStoredTransform, requireDisks} from './ovf-source.js'

const isManifestName = (name: string) => /\.mf$/i.test(name)

/** The manifest that goes with the descriptor: same stem, else the only .mf in the archive. */
function findManifest(members: TarMember[], descriptorName: string): TarMember | undefined {
  const sameStem = descriptorName.replace(/\.ovf$/i, '.mf').toLowerCase()
  const manifests = members.filter((member) => isManifestName(member.name))
  return manifests.find((member) => member.name.toLowerCase() === sameStem) ?? (manifests.length === 1 ? manifests[0] : undefined)
}

async function verifyManifest(ctx: LoaderContext, tarPath: string, members: TarMember[], manifest: TarMember, label: string): Promise<string> {
  const manifestLabel = `${label}:${manifest.name}`
  const entries = parseManifest(await readBoundedText(tarPath, manifest, {code: 'H2K_MANIFEST_MISMATCH', label: manifestLabel}), manifestLabel)
  const byName = new Map(members.map((member) => [member.name, member]))
  const memberFor = (name: string) => {
    const canonical = memberNameOrUndefined(name, manifestLabel)
    return canonical === undefined ? undefined : byName.get(canonical)
  }
  // Digests the first pass did not compute (all of them for a plain OVA) are computed in one more
  // sequential pass that reads only the listed members.
  const missing = new Map<string, DigestAlgorithm[]>()
  for (const [name, algorithms] of algorithmsByName(entries)) {
    const member = memberFor(name)
    const need = member ? algorithms.filter((algorithm) => member.digests[algorithm] === undefined) : []
    if (member && need.length > 0) missing.set(member.name, [...(missing.get(member.name) ?? []), ...need])
  }
  if (missing.size > 0) {
    const hashed = await scanTar(tarPath, {
      hashMembers: (name) => missing.get(name) ?? [],
      label,
      onProgress: tarScanReporter(ctx, 'Verifying the OVA manifest'),
      signal: ctx.signal,
    })
    for (const member of hashed) Object.assign(byName.get(member.name)?.digests ?? {}, member.digests)
  }
  checkManifest(entries, (name) => memberFor(name)?.digests, manifestLabel)
  const algorithms = [...new Set(entries.map((entry) => entry.algorithm.toUpperCase()))].join('/')
  return `manifest ${manifest.name} verified: ${entries.length} ${algorithms} digests`
}

function diskMembers(descriptor: OvfDescriptor, members: TarMember[], label: string): TarMember[] {
  const byName = new Map(members.map((member) => [member.name, member]))
  return descriptor.disks.map((disk) => {
    refuseStoredTransform(disk.file, label)
    const member = byName.get(memberNameForHref(disk.file.href, label))
    if (!member) {
      throw new H2KError('H2K_EXTENT_MISSING', `${label}: disk ${disk.id} is stored in "${disk.file.href}", which the OVA does not contain.`, {
        details: {disk: disk.id, href: disk.file.href},
      })
    }
    return member
  })
}

/**
 * OVA appliances: a tar (optionally gzip'ed as a whole) with the OVF descriptor first, the disks, and an
 * optional manifest. Disks are read in place at their member offsets; nothing is extracted. A gzip'ed OVA
 * is decompressed once, streaming, into the job directory while it is scanned.
 */
export const ovaLoader: LoaderStage = {
  description: 'OVA appliances (tar, or gzip-compressed tar): disks read in place, .mf digests verified, VM hardware from the OVF',
  formats: ['ova'],
  kind: 'loader',
  name: 'ova',

  probe(input: ProbeInput) {
    if (input.isDirectory) return null
    const names = peekTarNames(input.head)
    if (names !== null) {
      const first = names.find((name) => !name.endsWith('/'))
      return first !== undefined && /\.ovf$/i.test(first) ? {by: 'content', format: 'ova'} : null
    }
    if (isGzip(input.head) && input.extension === '.ova') return {by: 'content', format: 'ova', subformat: 'gzip'}
    return null
  },

  async run(ctx: LoaderContext) {
    const ova = ctx.input.path
    const label = basename(ova)
    const gzip = isGzip(ctx.input.head)
    const {members, tarPath} = await scanArchive(ova, {
      gzip,
      label,
      signal: ctx.signal,
      tarPath: join(ctx.workDir, `${safeFileStem(basename(ova, extname(ova)), 'appliance')}.tar`),
      // The manifest is usually the last member, so which digests it wants is unknown while streaming:
      // compute the two that OVF 1.x and 2.x use, and make up any other in a pass over the copy.
      whileDecompressing: {hashMembers: (name) => (isManifestName(name) ? [] : ['sha1', 'sha256']), onProgress: tarScanReporter(ctx, 'Decompressing the OVA')},
    })
    const descriptorMember = members.find((member) => /\.ovf$/i.test(member.name))
    if (!descriptorMember) throw new H2KError('H2K_OVF_INVALID', `${label} holds no .ovf descriptor.`, {details: {archive: ova}})
    const descriptorLabel = `${label}:${descriptorMember.name}`
    const descriptor = parseOvfDescriptor(await readBoundedText(tarPath, descriptorMember, {code: 'H2K_OVF_INVALID', label: descriptorLabel}), descriptorLabel)
    requireDisks(descriptor, descriptorLabel)
    const disks = diskMembers(descriptor, members, label)

    const notes: string[] = gzip ? [`gzip-compressed OVA decompressed once into the job directory`] : []
    const manifest = findManifest(members, descriptorMember.name)
    notes.push(manifest ? await verifyManifest(ctx, tarPath, members, manifest, label) : 'no manifest (.mf) in the OVA: digests not verified')

    const sourceDisks: SourceDisk[] = []
    for (const [index, member] of disks.entries()) {
      const disk = descriptor.disks[index] as OvfDescriptor['disks'][number]
      const found = await describeDiskInFile(tarPath, {label: `${member.name} in ${label}`, window: {offset: member.offset, size: member.size}})
      const sourceDisk: SourceDisk = {allocatedBytes: member.size, files: [tarPath], format: found.format, label: disk.id, spec: found.spec}
      if (found.subformat !== undefined) sourceDisk.subformat = found.subformat
      sourceDisks.push(sourceDisk)
    }
    return ovfSource(ova, 'ova', descriptor, sourceDisks, notes, basename(ova, extname(ova)), gzip ? 'gzip' : undefined)
  },
}
