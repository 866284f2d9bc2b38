import type {PluginApi, StageRegistration} from '@hyper2kvm/plugin-api'

import {migrationMarker} from './migration-marker.js'

/** What the host passes to the hook: its runtime API, and oclif's config (whose `version` is the host's). */
export interface RegisterOptions {
  api?: PluginApi
  config?: {version?: string}
}

/**
 * The `hyper2kvm:register` hook (package.json `oclif.hooks`). Every runtime value the plugin needs comes
 * from `api`: it imports nothing from hyper2kvm, which does not resolve from where `hyper2kvm plugins
 * install` puts a plugin. It states the API version it was written for, so a host that speaks another
 * one refuses it instead of running it.
 */
export default async function register({api, config}: RegisterOptions): Promise<StageRegistration> {
  if (!api) throw new Error('hyper2kvm-plugin-migration-marker needs a hyper2kvm that passes its plugin API to the hyper2kvm:register hook (0.1.0 or later).')
  return {apiVersion: 1, stages: [migrationMarker(api, {hostVersion: config?.version})]}
}
