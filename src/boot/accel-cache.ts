import {mkdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {isAbsolute, join} from 'node:path'

import type {Accel} from './boot-args.js'

/** What a probe verdict depends on: a new qemu, a new host kernel or a (dis)appearing /dev/kvm means probing again. */
export interface AccelCacheKey {
  qemu: string
  hostKernel: string
  kvmDevice: boolean
}

export interface CachedVerdict {
  accel: Accel
  reason: string
  probedAt: string
}

interface CacheFile extends CachedVerdict {
  version: 1
  key: AccelCacheKey
}

const CACHE_FILE = 'accel.json'
/** Even an unchanged host is re-probed now and then: a hypervisor upgrade underneath does not change any key field. */
const MAX_AGE_MS = 30 * 24 * 3600 * 1000

/** $XDG_CACHE_HOME/hyper2kvm, else ~/.cache/hyper2kvm (the XDG rule: a relative XDG_CACHE_HOME is ignored). */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'hyper2kvm')
}

function sameKey(a: AccelCacheKey, b: AccelCacheKey): boolean {
  return a.qemu === b.qemu && a.hostKernel === b.hostKernel && a.kvmDevice === b.kvmDevice
}

function isCacheFile(value: unknown): value is CacheFile {
  if (typeof value !== 'object' || value === null) return false
  const file = value as Partial<CacheFile>
  const key = file.key as Partial<AccelCacheKey> | undefined
  return (
    file.version === 1 &&
    (file.accel === 'kvm' || file.accel === 'tcg') &&
    typeof file.reason === 'string' &&
    typeof file.probedAt === 'string' &&
    typeof key?.qemu === 'string' &&
    typeof key.hostKernel === 'string' &&
    typeof key.kvmDevice === 'boolean'
  )
}

/** The cached verdict for this key, if any, fresh and well-formed; anything else means "probe again". */
export async function readCachedVerdict(cacheDir: string, key: AccelCacheKey, now = Date.now()): Promise<CachedVerdict | undefined> {
  let text: string
  try {
    text = await readFile(join(cacheDir, CACHE_FILE), 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'EACCES' || code === 'ENOTDIR') return undefined
    throw error
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    // A torn or hand-edited cache is not an error: the probe runs again and rewrites it.
    return undefined
  }
  if (!isCacheFile(parsed) || !sameKey(parsed.key, key)) return undefined
  const age = now - Date.parse(parsed.probedAt)
  if (!(age >= 0 && age < MAX_AGE_MS)) return undefined
  return {accel: parsed.accel, probedAt: parsed.probedAt, reason: parsed.reason}
}

/**
 * Store a verdict (atomically: concurrent jobs may probe at once). Returns why it could not be stored, for
 * the caller to log: an unwritable cache only costs a probe next time.
 */
export async function writeCachedVerdict(cacheDir: string, key: AccelCacheKey, verdict: CachedVerdict): Promise<string | undefined> {
  const file: CacheFile = {version: 1, key, ...verdict}
  const target = join(cacheDir, CACHE_FILE)
  const temporary = `${target}.${process.pid}.tmp`
  try {
    await mkdir(cacheDir, {recursive: true})
    await writeFile(temporary, `${JSON.stringify(file, null, 2)}\n`)
    await rename(temporary, target)
    return undefined
  } catch (error) {
    // Best effort: the temporary file may not even exist (mkdir or write failed first).
    await rm(temporary, {force: true}).catch(() => undefined)
    return `could not cache the verdict in ${target}: ${(error as Error).message}`
  }
}
