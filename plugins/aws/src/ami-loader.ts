import {basename, join} from 'node:path'

import {
  describeDiskInFile,
  detectImageFormat,
  H2KError,
  isGzip,
  type LoaderContext,
  type LoaderStage,
  peekTarNames,
  type ProbeInput,
  readAt,
  safeFileStem,
  scanArchive,
  type SourceDisk,
  type TarMember,
  tarScanReporter,
} from '@hyper2kvm/plugin-api'

/** Member names that say "disk image" in an export tarball. */
const DISK_NAME = /\.(raw|img|vmdk|vhd|vhdx|qcow2)$/i

function isGzipTarName(path: string): boolean {
  return /\.(tar\.gz|tgz)$/i.test(path)
}

function tarballStem(path: string): string {
  return basename(path).replace(/\.(tar\.gz|tgz|tar)$/i, '')
}

/**
 * The disk of the tarball: members named like disk images, or, when none is, members whose first bytes
 * are a known image format. Exactly one is required: an export with several disks is something else.
 */
async function theDiskMember(tarPath: string, members: TarMember[], label: string): Promise<TarMember> {
  let disks = members.filter((member) => DISK_NAME.test(member.name))
  if (disks.length === 0) {
    disks = []
    for (const member of members) {
      if (member.size >= 512 && detectImageFormat(await readAt(tarPath, member.offset, Math.min(member.size, 4096))) !== null) disks.push(member)
    }
  }
  const listing = members.map((member) => member.name).slice(0, 10).join(', ')
  if (disks.length === 0) {
    throw new H2KError('H2K_INPUT_UNSUPPORTED', `${label} holds no disk image (members: ${listing || 'none'}); an AWS export tarball holds exactly one (.raw, .img, .vmdk or .vhd).`, {
      details: {archive: label, members: members.map((member) => member.name).slice(0, 100)},
    })
  }
  if (disks.length > 1) {
    throw new H2KError('H2K_INPUT_UNSUPPORTED', `${label} holds ${disks.length} disk images (${disks.map((disk) => disk.name).slice(0, 10).join(', ')}); an AWS export tarball holds exactly one.`, {
      details: {archive: label, disks: disks.map((disk) => disk.name).slice(0, 100)},
      suggestions: ['Convert each disk file on its own, or pack them as an OVA with an .ovf descriptor.'],
    })
  }
  return disks[0] as TarMember
}

/**
 * AWS VM/AMI export tarballs: a tar (no .ovf: that would be an OVA) holding exactly one disk image, read
 * in place at its member offset. A .tar.gz is decompressed once into the job directory. Plain .raw, .vmdk
 * and .vhd exports are not tarballs: the generic, vmware and hyperv loaders read those directly.
 */
export const amiLoader: LoaderStage = {
  description: 'AWS export tarballs (.tar or .tar.gz holding one raw/VMDK/VHD disk, read in place); plain .raw/.vmdk/.vhd exports go to the generic, vmware and hyperv loaders',
  formats: ['ami'],
  kind: 'loader',
  name: 'ami',

  probe(input: ProbeInput) {
    if (input.isDirectory) return null
    const names = peekTarNames(input.head)
    if (names !== null) return names.some((name) => /\.ovf$/i.test(name)) ? null : {by: 'content', format: 'ami'}
    if (isGzip(input.head) && isGzipTarName(input.path)) return {by: 'content', format: 'ami', subformat: 'gzip'}
    return null
  },

  async run(ctx: LoaderContext) {
    const tarball = ctx.input.path
    const label = basename(tarball)
    const gzip = isGzip(ctx.input.head)
    const {members, tarPath} = await scanArchive(tarball, {
      gzip,
      label,
      signal: ctx.signal,
      tarPath: join(ctx.workDir, `${safeFileStem(tarballStem(tarball), 'export')}.tar`),
      whileDecompressing: {onProgress: tarScanReporter(ctx, 'Decompressing the export')},
    })
    if (members.some((member) => /\.ovf$/i.test(member.name))) {
      throw new H2KError('H2K_INPUT_UNSUPPORTED', `${label} holds an .ovf descriptor: it is an OVA, not an AWS export tarball.`, {
        suggestions: ['Rename it to .ova and keep the .ovf as its first member, so the OVA loader reads it.'],
      })
    }
    const member = await theDiskMember(tarPath, members, label)
    const found = await describeDiskInFile(tarPath, {label: `${member.name} in ${label}`, window: {offset: member.offset, size: member.size}})
    const disk: SourceDisk = {allocatedBytes: member.size, files: [tarPath], format: found.format, label: member.name, spec: found.spec}
    if (found.subformat !== undefined) disk.subformat = found.subformat
    const notes = gzip ? ['gzip-compressed tarball decompressed once into the job directory'] : []
    return {
      disks: [disk],
      format: 'ami',
      input: tarball,
      name: safeFileStem(tarballStem(tarball), 'export'),
      notes: [...notes, `disk ${member.name} read in place from the tarball`],
      ...(gzip ? {subformat: 'gzip'} : {}),
      vm: {diskOrder: [member.name]},
    }
  },
}
