import {hashFile} from '../output/file-checksum.js'
import type {DedupKey} from './config.js'

/**
 * The content hash dedup compares, or undefined for the name-size key. SHA-256 is the recommended
 * content key: with the CPU's SHA extensions OpenSSL hashes it ~1.8× faster than MD5 (README, Daemon);
 * MD5 stays for deduplication_use_md5 (the seed key). Stored as plain hex: 32 digits MD5, 64 SHA-256.
 */
export async function fileKey(path: string, key: DedupKey, signal?: AbortSignal): Promise<string | undefined> {
  return key === 'name-size' ? undefined : hashFile(path, key, signal)
}
