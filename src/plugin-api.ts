/**
 * The runtime API the host injects into every `hyper2kvm:register` hook as `options.api` (src/stages/load-registry.ts):
 * every runtime value of `@hyper2kvm/plugin-api` (one copy, the host's, so `instanceof H2KError` holds) plus the
 * host's services (HostServices). Also the package export `hyper2kvm/plugin-api`, kept for this release so plugins
 * written against it still load; new plugins take types from `@hyper2kvm/plugin-api` and values from `api`.
 */
import type {HostServices} from '@hyper2kvm/plugin-api'

import {imageInfo as qemuImageInfo} from './qemu/qemu-img.js'

export * from '@hyper2kvm/plugin-api'

export const imageInfo: HostServices['imageInfo'] = qemuImageInfo
