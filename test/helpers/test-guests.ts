import {spawn} from 'node:child_process'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

/**
 * The test guests (issue #12 part 8: nothing skips on a fresh machine). A suite that boots or converts a
 * built guest names it with `guestPath(variant)` at module or `describe` scope, i.e. while mocha loads the
 * spec files; the root hook below then builds every variant that was named, once, BEFORE any suite runs
 * (test/e2e/guest/build-guest.sh <cache> <variant>: cached in $H2K_E2E_CACHE, a cache hit costs ~nothing).
 *
 * Why declarations at load time rather than a lazy build in each suite's `before`: the builds happen in one
 * place, before the first test, so no suite's own timeout or timing (boot-check measures seconds) ever
 * includes a guest build; and a run that selects no such file (`npx mocha 'test/unit/**\/*.test.ts'`)
 * declares nothing and builds nothing. Wired in .mocharc.json (`require`), so `npx mocha <one file>` works.
 *
 * Calling guestPath() for a new variant after the builds began is a mistake in the test and throws.
 */

export const GUEST_CACHE = process.env.H2K_E2E_CACHE ?? '/var/cache/hyper2kvm-test/guest'
const BUILDER = fileURLToPath(new URL('../e2e/guest/build-guest.sh', import.meta.url))
/** A fresh machine debootstraps and builds each guest (~10 min each under TCG on 2 busy cores). */
const BUILD_TIMEOUT_MS = 60 * 60_000

interface Registry {
  built: boolean
  variants: Set<string>
}

// On globalThis: mocha may load this file as the root-hook plugin and the specs import it again; both must
// share one registry.
const registry: Registry = ((globalThis as Record<symbol, unknown>)[Symbol.for('hyper2kvm.test-guests')] ??= {built: false, variants: new Set<string>()}) as Registry

/** The path of the built guest `variant` (test/e2e/guest/variants/<variant>.sh); declares that it must be built. */
export function guestPath(variant: string): string {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(variant)) throw new Error(`bad test guest variant name: ${variant}`)
  if (!registry.variants.has(variant)) {
    if (registry.built) throw new Error(`test guest ${variant} was first named after the guests were built: call guestPath('${variant}') at module or describe scope`)
    registry.variants.add(variant)
  }
  return join(GUEST_CACHE, `${variant}.raw`)
}

function build(variant: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // The builder logs progress to stderr (one "cache hit" line when cached); pass it through.
    const child = spawn('bash', [BUILDER, GUEST_CACHE, variant], {stdio: ['ignore', 'ignore', 'inherit']})
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      if (code === 0) resolve()
      else reject(new Error(`building test guest ${variant} failed (${signal ?? `exit ${code}`}); see the [build-guest] lines above`))
    })
  })
}

/** Every declared guest, one after the other (the builds are CPU-bound; 2 cores are better spent serially). */
export async function buildDeclaredGuests(): Promise<void> {
  registry.built = true
  for (const variant of [...registry.variants].sort()) await build(variant)
}

/** Mocha root-hook plugin (.mocharc.json `require`): runs once, after all spec files are loaded, before any suite. */
export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    this.timeout(BUILD_TIMEOUT_MS)
    await buildDeclaredGuests()
  },
}
