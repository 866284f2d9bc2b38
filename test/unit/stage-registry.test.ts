import assert from 'node:assert/strict'

import {StageRegistry} from '../../src/stages/stage-registry.js'
import type {LoaderStage, PipelineStage} from '@hyper2kvm/plugin-api'

const fixer = (name: string, after?: string[]): PipelineStage => ({after, kind: 'fixer', name, run: async () => {}})
const loader = (name: string, priority?: number): LoaderStage => ({formats: [name], kind: 'loader', name, priority, probe: () => null, run: async () => ({disks: [], format: name, input: '', name})})
const plugin = (name: string) => ({name, version: '1.0.0'})

describe('StageRegistry', () => {
  it('orders contributions by plugin name, whatever order the hooks answered in', () => {
    const a = StageRegistry.fromContributions([
      {plugin: plugin('b-plugin'), result: {apiVersion: 1, stages: [loader('zeta')]}},
      {plugin: plugin('a-plugin'), result: {apiVersion: 1, stages: [loader('alpha')]}},
    ])
    const b = StageRegistry.fromContributions([
      {plugin: plugin('a-plugin'), result: {apiVersion: 1, stages: [loader('alpha')]}},
      {plugin: plugin('b-plugin'), result: {apiVersion: 1, stages: [loader('zeta')]}},
    ])
    assert.deepEqual(a.stages.map((s) => s.id), b.stages.map((s) => s.id))
    assert.deepEqual(a.plugins.map((p) => p.name), ['a-plugin', 'b-plugin'])
  })

  it('probes loaders by priority, then id', () => {
    const registry = StageRegistry.fromContributions([
      {plugin: plugin('p'), result: {apiVersion: 1, stages: [loader('raw', -10), loader('vmdk'), loader('ova', 5), loader('aaa')]}},
    ])
    assert.deepEqual(registry.loaders().map((l) => l.id), ['loader:ova', 'loader:aaa', 'loader:vmdk', 'loader:raw'])
  })

  it('rejects a duplicate stage id and keeps the first, recording the failure against the second plugin', () => {
    const registry = StageRegistry.fromContributions([
      {plugin: plugin('second'), result: {apiVersion: 1, stages: [loader('vmdk')]}},
      {plugin: plugin('first'), result: {apiVersion: 1, stages: [loader('vmdk')]}},
    ])
    assert.equal(registry.stages.length, 1)
    assert.equal(registry.stages[0]!.plugin.name, 'first')
    assert.equal(registry.failures.length, 1)
    assert.equal(registry.failures[0]!.plugin.name, 'second')
    assert.equal(registry.failures[0]!.error.code, 'H2K_PLUGIN_INVALID')
  })

  it('refuses unknown API versions and malformed stages but keeps the plugin listed with its failure', () => {
    const registry = StageRegistry.fromContributions([
      {plugin: plugin('future'), result: {apiVersion: 2, stages: [loader('x')]}},
      {plugin: plugin('broken'), result: {apiVersion: 1, stages: [{kind: 'loader', name: 'noprobe', run: async () => ({})}, {kind: 'painter', name: 'x', run: async () => {}}]}},
    ])
    assert.equal(registry.stages.length, 0)
    assert.deepEqual(registry.plugins.map((p) => p.name), ['broken', 'future'])
    const messages = registry.failures.map((f) => f.error.message).join('\n')
    assert.match(messages, /unsupported plugin API version 2/)
    assert.match(messages, /loader noprobe has no probe\(\)/)
    assert.match(messages, /unknown stage kind "painter"/)
    assert.equal(registry.byPlugin().find((p) => p.plugin.name === 'future')!.failures.length, 1)
  })

  it('runs fixers after the stages they name, ties broken by id', () => {
    const registry = StageRegistry.fromContributions([
      {plugin: plugin('p'), result: {apiVersion: 1, stages: [fixer('initramfs', ['fstab', 'grub']), fixer('grub', ['fstab']), fixer('fstab'), fixer('network')]}},
    ])
    assert.deepEqual(registry.ofKind('fixer').map((s) => s.stage.name), ['fstab', 'grub', 'initramfs', 'network'])
  })

  it('reports an "after" cycle as an invalid plugin registration', () => {
    const registry = StageRegistry.fromContributions([{plugin: plugin('p'), result: {apiVersion: 1, stages: [fixer('a', ['b']), fixer('b', ['a'])]}}])
    assert.throws(() => registry.ofKind('fixer'), (error: {code?: string}) => error.code === 'H2K_PLUGIN_INVALID')
  })

  it('warns (PLUGIN_AFTER_UNKNOWN) about an after: naming no registered stage of the same kind, and still runs the stage', () => {
    const registry = StageRegistry.fromContributions([
      {plugin: plugin('core'), result: {apiVersion: 1, stages: [fixer('fstab'), loader('grub')]}},
      // "fstabb" is a typo; "grub" exists, but as a loader, not a fixer: neither orders anything.
      {plugin: plugin('third'), result: {apiVersion: 1, stages: [fixer('marker', ['fstabb', 'fstab', 'grub'])]}},
    ])
    assert.deepEqual(registry.warnings.map((w) => [w.code, w.plugin, w.stage]), [
      ['PLUGIN_AFTER_UNKNOWN', 'third', 'fixer:marker'],
      ['PLUGIN_AFTER_UNKNOWN', 'third', 'fixer:marker'],
    ])
    assert.match(registry.warnings[0]!.message, /after: "fstabb", but no fixer of that name is registered/)
    assert.match(registry.warnings[1]!.message, /after: "grub", but no fixer of that name is registered/)
    assert.equal(registry.byPlugin().find((p) => p.plugin.name === 'third')!.warnings.length, 2)
    assert.deepEqual(registry.ofKind('fixer').map((s) => s.id), ['fixer:fstab', 'fixer:marker'])
    assert.deepEqual(registry.failedPlugins(), [])
  })

  it('has no warnings when every after: names a registered stage', () => {
    const registry = StageRegistry.fromContributions([{plugin: plugin('p'), result: {apiVersion: 1, stages: [fixer('grub', ['fstab']), fixer('fstab')]}}])
    assert.deepEqual(registry.warnings, [])
  })
})
