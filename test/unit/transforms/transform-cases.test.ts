import assert from 'node:assert/strict'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import type {DeviceResolver, FstabMode, StableIds} from '../../../plugins/linux/src/transforms/device-resolver.js'
import {rewriteDeviceMap} from '../../../plugins/linux/src/transforms/device-map.js'
import {dracutConfFor} from '../../../plugins/linux/src/transforms/dracut-conf.js'
import {DEFAULT_INITRAMFS_DRIVERS} from '../../../plugins/linux/src/transforms/initramfs-drivers.js'
import {ensureInitramfsToolsModules} from '../../../plugins/linux/src/transforms/initramfs-tools-modules.js'
import {ensureMkinitcpioModules} from '../../../plugins/linux/src/transforms/mkinitcpio-conf.js'
import {ensureMkinitfsFeatures} from '../../../plugins/linux/src/transforms/mkinitfs-conf.js'
import {rewriteBlsEntry} from '../../../plugins/linux/src/transforms/rewrite-bls-entry.js'
import {rewriteCrypttab} from '../../../plugins/linux/src/transforms/rewrite-crypttab.js'
import {rewriteDefaultGrub} from '../../../plugins/linux/src/transforms/rewrite-default-grub.js'
import {rewriteFstab} from '../../../plugins/linux/src/transforms/rewrite-fstab.js'
import {findUnstableRoots, rewriteGrubCfg} from '../../../plugins/linux/src/transforms/rewrite-grub-cfg.js'
import {GRUBENV_SIZE, rewriteGrubenv} from '../../../plugins/linux/src/transforms/rewrite-grubenv.js'
import {rewriteInitramfsResume} from '../../../plugins/linux/src/transforms/rewrite-initramfs-resume.js'
import {rewriteKernelCmdlineFile} from '../../../plugins/linux/src/transforms/rewrite-kernel-cmdline.js'
import {ensureSuseInitrdModules} from '../../../plugins/linux/src/transforms/suse-initrd-modules.js'
import {type MacPin, type NamingScheme, type NicBinding, planNics} from '../../../plugins/linux/src/transforms/nic-plan.js'
import {persistentNetPins, rewritePersistentNetRules} from '../../../plugins/linux/src/transforms/persistent-net-rules.js'
import {ifcfgBindings, rewriteIfcfg} from '../../../plugins/linux/src/transforms/rewrite-ifcfg.js'
import {ifupdownBindings, rewriteIfupdown} from '../../../plugins/linux/src/transforms/rewrite-ifupdown.js'
import {netplanBindings, netplanPins, rewriteNetplan} from '../../../plugins/linux/src/transforms/rewrite-netplan.js'
import {decideNetworkdLink, networkdBindings, networkdLinkPin, rewriteNetworkdNetwork} from '../../../plugins/linux/src/transforms/rewrite-networkd.js'
import {nmKeyfileBindings, rewriteNmKeyfile} from '../../../plugins/linux/src/transforms/rewrite-nm-keyfile.js'
import {splitLines} from '../../../plugins/linux/src/transforms/text-lines.js'
import type {TransformResult} from '../../../plugins/linux/src/transforms/transform-result.js'

// Each case is a folder cases/<transform>/<case>/ with `input` (a guest file byte for byte), `expected` (the exact
// output), optional `args.json` ({mode, devices: {device: ids}, drivers, resume}) and optional `expect.json` (warnings as
// substrings in order, needsRegeneration, device.map action, unstableRootsBefore).
const CASES = join(dirname(fileURLToPath(import.meta.url)), 'cases')

interface CaseArgs {
  mode?: FstabMode
  devices?: Record<string, StableIds>
  drivers?: string[]
  scheme?: NamingScheme
  keepMacs?: boolean
  bindings?: NicBinding[]
  pins?: MacPin[]
  /** dracut-conf: the guest has swap */
  resume?: boolean
}

interface CaseExpect {
  warnings?: string[]
  needsRegeneration?: boolean
  action?: 'delete' | 'keep'
  unstableRootsBefore?: number
  bindings?: NicBinding[]
  pins?: MacPin[]
}

interface Outcome extends TransformResult {
  extra?: Record<string, unknown>
}

type Transform = (input: string, args: CaseArgs, resolve: DeviceResolver) => Outcome

const drivers = (args: CaseArgs): readonly string[] => args.drivers ?? DEFAULT_INITRAMFS_DRIVERS

/** A network transform run the way fixer:network runs it: the NIC plan comes from this file plus what args.json says other guest files hold. */
function network(bindingsOf: (text: string) => NicBinding[], pinsOf: (text: string) => MacPin[], run: (input: string, plan: ReturnType<typeof planNics>) => TransformResult & {remove?: boolean; action?: string; reason?: string}): Transform {
  return (input, args) => {
    const bindings = bindingsOf(input)
    const pins = pinsOf(input)
    const plan = planNics([...bindings, ...(args.bindings ?? [])], [...pins, ...(args.pins ?? [])], {keepMacs: args.keepMacs ?? false, scheme: args.scheme ?? 'predictable'})
    const {action, remove, ...result} = run(input, plan)
    return {...result, extra: {action: action ?? (remove === undefined ? undefined : remove ? 'delete' : 'keep'), bindings, pins}}
  }
}
const FILE = '/etc/network/config'
const none = (): MacPin[] => []

const TRANSFORMS: Record<string, Transform> = {
  'rewrite-fstab': (input, args, resolve) => rewriteFstab(input, args.mode ?? 'stabilize-all', resolve),
  'rewrite-crypttab': (input, args, resolve) => rewriteCrypttab(input, args.mode ?? 'stabilize-all', resolve),
  'rewrite-initramfs-resume': (input, _, resolve) => rewriteInitramfsResume(input, resolve),
  'rewrite-kernel-cmdline-file': (input, _, resolve) => rewriteKernelCmdlineFile(input, resolve),
  'rewrite-default-grub': (input, _, resolve) => {
    const {needsRegeneration, ...result} = rewriteDefaultGrub(input, resolve)
    return {...result, extra: {needsRegeneration}}
  },
  'rewrite-bls-entry': (input, _, resolve) => rewriteBlsEntry(input, resolve),
  'rewrite-grubenv': (input, _, resolve) => rewriteGrubenv(input, resolve),
  'rewrite-grub-cfg': (input, _, resolve) => rewriteGrubCfg(input, resolve),
  'device-map': (input) => {
    const {action, warnings} = rewriteDeviceMap(input)
    return {text: input, edits: [], warnings, extra: {action}}
  },
  'initramfs-tools-modules': (input, args) => ensureInitramfsToolsModules(input, drivers(args)),
  'dracut-conf': (_, args) => ({text: dracutConfFor(drivers(args), {resume: args.resume}), edits: [], warnings: []}),
  'mkinitcpio-conf': (input, args) => ensureMkinitcpioModules(input, drivers(args)),
  'suse-initrd-modules': (input, args) => ensureSuseInitrdModules(input, drivers(args)),
  'mkinitfs-conf': (input, args) => ensureMkinitfsFeatures(input, drivers(args)),
  'rewrite-ifupdown': network((t) => ifupdownBindings(t, FILE), none, rewriteIfupdown),
  'rewrite-netplan': network((t) => netplanBindings(t, FILE), netplanPins, rewriteNetplan),
  'rewrite-networkd-network': network((t) => networkdBindings(t, FILE), none, rewriteNetworkdNetwork),
  'networkd-link': network(() => [], (t) => [networkdLinkPin(t)].filter((p): p is MacPin => p !== undefined), (input, plan) => ({...decideNetworkdLink(input, plan), edits: [], text: input, warnings: []})),
  'rewrite-nm-keyfile': network((t) => nmKeyfileBindings(t, FILE), none, rewriteNmKeyfile),
  'rewrite-ifcfg': network((t) => ifcfgBindings(t, FILE), none, rewriteIfcfg),
  'persistent-net-rules': network(() => [], persistentNetPins, rewritePersistentNetRules),
}

// Files findUnstableRoots reads: after the transform, none may keep a root= that virtio cannot find.
const BOOT_CONFIGS = new Set(['rewrite-grub-cfg', 'rewrite-bls-entry', 'rewrite-grubenv'])
// Transforms that write a whole new file rather than edit one (no input, no line edits).
const GENERATORS = new Set(['dracut-conf'])

function readJson<T>(path: string, fallback: T): T {
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as T) : fallback
}

function readText(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : ''
}

/**
 * Every edit must describe the files as they are: `after` is in the output at that line and `before` in the input
 * at that line less the lines added above it (an edit with before '' adds a line).
 */
function assertEditsMatch(input: string, output: string, result: Outcome): void {
  const before = splitLines(input)
  const after = splitLines(output)
  for (const edit of result.edits) {
    const added = result.edits.filter((e) => e.before === '' && e.line < edit.line).length
    assert.equal(after[edit.line - 1]?.body, edit.after, `edit of line ${edit.line}: after`)
    if (edit.before !== '') assert.equal(before[edit.line - 1 - added]?.body, edit.before, `edit of line ${edit.line}: before`)
    assert.ok(edit.reason.length > 0, `edit of line ${edit.line} has a reason`)
  }
}

describe('guest file transforms: data-driven cases', () => {
  it('has a runner for every case folder and at least 25 cases', () => {
    const transforms = readdirSync(CASES, {withFileTypes: true}).filter((entry) => entry.isDirectory())
    for (const entry of transforms) assert.ok(TRANSFORMS[entry.name], `no runner for cases/${entry.name}`)
    const count = transforms.reduce((sum, entry) => sum + readdirSync(join(CASES, entry.name)).length, 0)
    assert.ok(count >= 25, `only ${count} cases`)
  })

  for (const transform of readdirSync(CASES, {withFileTypes: true}).filter((entry) => entry.isDirectory())) {
    const run = TRANSFORMS[transform.name]
    if (!run) continue
    describe(transform.name, () => {
      for (const name of readdirSync(join(CASES, transform.name)).sort()) {
        const dir = join(CASES, transform.name, name)
        const input = readText(join(dir, 'input'))
        const expected = readFileSync(join(dir, 'expected'), 'utf8')
        const args = readJson<CaseArgs>(join(dir, 'args.json'), {})
        const expect = readJson<CaseExpect>(join(dir, 'expect.json'), {})
        const calls: string[] = []
        const resolve: DeviceResolver = (device) => {
          calls.push(device)
          return args.devices?.[device]
        }

        it(`${name}: produces the expected file`, () => {
          const result = run(input, args, resolve)
          assert.equal(result.text, expected)
          if (input === expected) assert.equal(result.edits.length, 0, 'no edits for an unchanged file')
          else if (!GENERATORS.has(transform.name)) assert.ok(result.edits.length > 0, 'a changed file comes with edits')
          assertEditsMatch(input, result.text, result)
          const warnings = expect.warnings ?? []
          assert.equal(result.warnings.length, warnings.length, `warnings: ${JSON.stringify(result.warnings)}`)
          for (const [index, fragment] of warnings.entries()) assert.ok(result.warnings[index]?.includes(fragment), `warning ${index} mentions ${fragment}`)
          if (expect.needsRegeneration !== undefined) assert.equal(result.extra?.['needsRegeneration'], expect.needsRegeneration)
          if (expect.action !== undefined) assert.equal(result.extra?.['action'], expect.action)
          if (expect.bindings !== undefined) assert.deepEqual(result.extra?.['bindings'], expect.bindings)
          if (expect.pins !== undefined) assert.deepEqual(result.extra?.['pins'], expect.pins)
        })

        it(`${name}: is idempotent`, () => {
          const once = run(input, args, resolve)
          const twice = run(once.text, args, resolve)
          assert.equal(twice.text, once.text)
          assert.equal(twice.edits.length, 0)
        })

        if (BOOT_CONFIGS.has(transform.name)) {
          it(`${name}: leaves no root= that virtio cannot find`, () => {
            assert.equal(findUnstableRoots(input).length, expect.unstableRootsBefore ?? 0, 'unstable roots before')
            assert.deepEqual(findUnstableRoots(run(input, args, resolve).text), [])
            if (transform.name === 'rewrite-grubenv') assert.equal(Buffer.byteLength(expected), GRUBENV_SIZE)
          })
        }
      }
    })
  }
})
