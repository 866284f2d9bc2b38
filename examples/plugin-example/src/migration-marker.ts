import type {GuestSession, PipelineStage, PluginApi, StageContext} from '@hyper2kvm/plugin-api'
import {basename} from 'node:path'

import {OPTIONS_SCHEMA, parseOptions} from './marker-options.js'
import {MAX_RECORD_BYTES, RECORD_PATH, isOwnRecord, recordText} from './migration-record.js'

export const STAGE_NAME = 'migration-marker'
const STAGE_ID = `fixer:${STAGE_NAME}`

export interface MarkerSettings {
  /** The host's version (the hook's `config.version`); left out of the record when unknown. */
  hostVersion?: string
  /** The clock; tests pass a fixed one. */
  now?: () => Date
}

/** What is at RECORD_PATH before the stage writes. */
type Existing = {state: 'absent'} | {state: 'own'; text: string} | {state: 'foreign'; why: string}

async function isTrue(session: GuestSession, command: string, path: string): Promise<boolean> {
  return (await session.call(command, path)).trim() === 'true'
}

/**
 * Look at RECORD_PATH without trusting the guest: a symbolic link is never followed (writing through it
 * would change whatever file it names), and a file that is not a small record of ours is never read nor
 * replaced.
 */
async function existingRecord(session: GuestSession): Promise<Existing> {
  if (await isTrue(session, 'is-symlink', RECORD_PATH)) return {state: 'foreign', why: 'is a symbolic link'}
  if (!(await session.exists(RECORD_PATH))) return {state: 'absent'}
  if (!(await isTrue(session, 'is-file', RECORD_PATH))) return {state: 'foreign', why: 'is not a regular file'}
  if (Number((await session.call('filesize', RECORD_PATH)).trim()) > MAX_RECORD_BYTES) return {state: 'foreign', why: `is larger than ${MAX_RECORD_BYTES} bytes`}
  const text = await session.readFile(RECORD_PATH)
  if (text === null) return {state: 'absent'}
  return isOwnRecord(text) ? {state: 'own', text} : {state: 'foreign', why: 'was not written by this plugin'}
}

/**
 * The fixer `fixer:migration-marker`: writes /etc/hyper2kvm-migrated in the converted guest (source name
 * and format, date, hyper2kvm version, the user's note). Runs after the stock Linux fixers; a second
 * conversion replaces the record it wrote before, and leaves any other file at that path alone.
 */
export function migrationMarker(api: Pick<PluginApi, 'H2KError'>, settings: MarkerSettings = {}): PipelineStage {
  const now = settings.now ?? (() => new Date())
  return {
    after: ['fstab', 'grub', 'initramfs'],
    applies: (ctx: StageContext) => ctx.inspection?.os === 'linux' && ctx.guest.isOpen,
    description: `Record the migration in the guest: ${RECORD_PATH} (source, format, date, hyper2kvm version, note)`,
    kind: 'fixer',
    name: STAGE_NAME,
    options: {schema: OPTIONS_SCHEMA},
    async run(ctx: StageContext) {
      const parsed = parseOptions(ctx.options)
      if ('problem' in parsed) throw new api.H2KError('H2K_STAGE_OPTIONS_INVALID', `${STAGE_ID}: ${parsed.problem}.`)
      ctx.report({message: `writing ${RECORD_PATH}`})
      const session = await ctx.guest.open()
      if (!(await isTrue(session, 'is-dir', '/etc'))) {
        throw new api.H2KError('H2K_FIX_FAILED', `The guest's /etc is not a directory: ${RECORD_PATH} cannot be written.`)
      }
      const existing = await existingRecord(session)
      if (existing.state === 'foreign') {
        // Say what is wrong with it, never what it holds or where a link points: it is the guest's content.
        ctx.warn('MIGRATION_RECORD_SKIPPED', `${RECORD_PATH} ${existing.why}; it was left as it is and no migration record was written.`)
        return
      }
      const after = recordText({
        hostVersion: settings.hostVersion,
        migratedAt: now(),
        note: parsed.options.note,
        source: basename(ctx.source?.input ?? ctx.job.input),
        sourceFormat: ctx.source?.format ?? 'unknown',
      })
      await session.writeFile(RECORD_PATH, after)
      const before = existing.state === 'own' ? existing.text : null
      ctx.changes.record({after, before, path: RECORD_PATH, reason: before === null ? 'migration record written' : 'migration record replaced (an earlier conversion wrote one)', stage: STAGE_ID})
      ctx.log.info(`${STAGE_ID}: wrote ${RECORD_PATH}`)
    },
  }
}
