import {basename, dirname, extname, join, normalize} from 'node:path'

import {parseVmdkDescriptor, readAt} from '@hyper2kvm/plugin-api'

/** Descriptors (OVF, VMDK text) are small; reading more than this to find companions is never needed. */
const MAX_DESCRIPTOR_BYTES = 1024 * 1024

/** The first `limit` bytes as text, or undefined when the file cannot be read (it may be gone already). */
async function readHead(path: string, limit: number): Promise<string | undefined> {
  return readAt(path, 0, limit).then(
    (bytes) => bytes.toString('utf8'),
    () => undefined,
  )
}

/** A name a descriptor gives for a file beside it; anything reaching elsewhere is left to the loader to refuse. */
function besideName(name: string): string | undefined {
  if (name === '' || /^[a-z][a-z0-9+.-]*:/i.test(name) || name.startsWith('/') || name.includes('\\')) return undefined
  const clean = normalize(name)
  return clean.startsWith('..') ? undefined : clean
}

const OVF_FILE_HREF = /<(?:\w+:)?File\b[^>]*?\b(?:\w+:)?href\s*=\s*"([^"]*)"/g

/** The files an OVF names in its References (required), plus its .mf and .cert (when present): they travel with it. */
async function ovfCompanions(path: string): Promise<Companions> {
  const text = await readHead(path, MAX_DESCRIPTOR_BYTES)
  if (text === undefined) return {optional: [], required: []}
  const base = basename(path, extname(path))
  const names = [...text.matchAll(OVF_FILE_HREF)].map((m) => besideName(m[1]!)).filter((n): n is string => n !== undefined)
  return {optional: [`${base}.mf`, `${base}.cert`], required: names}
}

/** A VMDK text descriptor's extent files and its parent (snapshot chains): they travel with it. */
async function vmdkCompanions(path: string): Promise<Companions> {
  const text = await readHead(path, 64 * 1024)
  if (text === undefined || !text.startsWith('# Disk DescriptorFile')) return {optional: [], required: []}
  try {
    const descriptor = parseVmdkDescriptor(text, path)
    const names = descriptor.extents.map((e) => e.filename).filter((n): n is string => n !== undefined)
    if (descriptor.parentFileNameHint) names.push(descriptor.parentFileNameHint)
    return {optional: [], required: names.map(besideName).filter((n): n is string => n !== undefined)}
  } catch {
    return {optional: [], required: []}
  }
}

/** Absolute paths of the files that belong with one file: required ones must arrive before it is claimed. */
export interface Companions {
  required: string[]
  optional: string[]
}

/**
 * Files that belong with `path` (which may not exist yet): an OVF's disks and manifest, a VMDK descriptor's
 * extents and parent. They are claimed, moved and archived together.
 */
export async function companionsOf(path: string): Promise<Companions> {
  const ext = extname(path).toLowerCase()
  const found = ext === '.ovf' ? await ovfCompanions(path) : ext === '.vmdk' ? await vmdkCompanions(path) : {optional: [], required: []}
  const dir = dirname(path)
  const absolute = (names: string[]): string[] => [...new Set(names.map((n) => join(dir, n)))].filter((p) => p !== path)
  return {optional: absolute(found.optional), required: absolute(found.required)}
}
