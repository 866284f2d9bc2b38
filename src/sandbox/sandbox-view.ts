import {specFiles} from '../qemu/image-spec.js'

/**
 * What a sandboxed tool may see of the host, besides the system files every tool needs to run (/usr,
 * the dynamic loader's cache, a minimal /dev, its own /proc and a private /tmp). Everything else of the
 * host file system does not exist inside the sandbox.
 */
export interface SandboxView {
  /** Files it reads (the input's own files): bound read-only at their own paths. */
  readOnly: readonly string[]
  /** Files or directories it writes (a `.part` output, the job's work directory): bound read-write. */
  readWrite: readonly string[]
  /** Device nodes beyond /dev/null, zero, random, urandom, tty (e.g. /dev/kvm for the boot test). */
  devices?: readonly string[]
  /** TMPDIR inside the sandbox: a directory in `readWrite`; default the private /tmp. */
  tmpDir?: string
}

/**
 * The view of a qemu tool that reads these block specs and writes `writable`: exactly the host files the
 * specs name (specFiles) and the files their loader resolved and validated for them (`loaderFiles`:
 * SourceDisk.files, e.g. the extents a sanitized VMDK descriptor names) read-only, and nothing else.
 */
export function specView(specs: readonly unknown[], writable: readonly string[] = [], loaderFiles: readonly string[] = []): SandboxView {
  return {readOnly: [...new Set([...specs.flatMap((spec) => specFiles(spec)), ...loaderFiles])], readWrite: [...writable]}
}

