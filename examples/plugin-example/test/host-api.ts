/**
 * The runtime API the host passes to the hook, for these tests. The plugin's own code never imports it (it
 * gets `api` from the hook); its tests take the same values from the @hyper2kvm/plugin-api devDependency.
 * TEMPORARY until that package exists in this tree: the host's build. Then: `export * as api from '@hyper2kvm/plugin-api'`.
 */
export * as api from '../../../dist/plugin-api.js'
