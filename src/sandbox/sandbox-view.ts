import {type SandboxView, specFiles} from '@hyper2kvm/plugin-api'

/**
 * The view of a qemu tool that reads these block specs and writes `writable`: exactly the host files the
 * specs name (specFiles) and the files their loader resolved and validated for them (`loaderFiles`:
 * SourceDisk.files, e.g. the extents a sanitized VMDK descriptor names) read-only, and nothing else.
 */
export function specView(specs: readonly unknown[], writable: readonly string[] = [], loaderFiles: readonly string[] = []): SandboxView {
  return {readOnly: [...new Set([...specs.flatMap((spec) => specFiles(spec)), ...loaderFiles])], readWrite: [...writable]}
}

