import assert from 'node:assert/strict'
import {mkdirSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {runCli} from './run-cli.js'

/** Test plugins (tiny oclif plugins with a `hyper2kvm:register` hook), one folder each. */
export const PLUGIN_FIXTURES = fileURLToPath(new URL('../fixtures/plugins/', import.meta.url))

/** A user's own HOME and XDG directories: plugins linked here are seen by this user's runs only. */
export function userEnv(root: string): NodeJS.ProcessEnv {
  const env = {HOME: join(root, 'home'), XDG_CACHE_HOME: join(root, 'cache'), XDG_CONFIG_HOME: join(root, 'config'), XDG_DATA_HOME: join(root, 'data')}
  for (const dir of Object.values(env)) mkdirSync(dir, {recursive: true})
  return env
}

/** `hyper2kvm plugins link --no-install <fixture>`: how a plugin author installs a plugin under development. */
export async function linkTestPlugins(env: NodeJS.ProcessEnv, ...names: string[]): Promise<void> {
  for (const name of names) {
    const result = await runCli(['plugins', 'link', '--no-install', join(PLUGIN_FIXTURES, name)], {env})
    assert.equal(result.code, 0, result.stderr)
  }
}
