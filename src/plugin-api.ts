/**
 * The runtime API the host injects into every `hyper2kvm:register` hook as `options.api` (src/stages/load-registry.ts):
 * every runtime value of `@hyper2kvm/plugin-api` (one copy, the host's, so `instanceof H2KError` holds) plus the
 * host's services (HostServices). Also the package export `hyper2kvm/plugin-api`, kept for this release so plugins
 * written against it still load; new plugins take types from `@hyper2kvm/plugin-api` and values from `api`.
 */
import type {HostServices} from '@hyper2kvm/plugin-api'

import {imageInfo as qemuImageInfo} from './qemu/qemu-img.js'

export * from '@hyper2kvm/plugin-api'

/**
 * Always in the sandbox, with the host's limits: whether a job runs unsandboxed is the job's decision
 * (`ctx.imageInfo` follows it), never a plugin's, so only the options the contract names are passed on (a
 * plugin's `sandbox: false` or its own `limits` used to reach qemu-img as given).
 */
export const imageInfo: HostServices['imageInfo'] = (spec, options) => qemuImageInfo(spec, {files: options?.files, signal: options?.signal})
