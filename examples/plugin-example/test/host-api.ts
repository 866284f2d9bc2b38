/**
 * The runtime API the host passes to the hook, for these tests. The plugin's own code never imports it (it
 * gets `api` from the hook). In this repository the tests take the host's own build, so they run the plugin
 * on exactly what hyper2kvm hands it. An author outside the repository takes the same values (H2KError,
 * register, the toolkit) from the @hyper2kvm/plugin-api devDependency.
 */
export * as api from '../../../dist/plugin-api.js'
