import type {StageContext} from '@hyper2kvm/plugin-api'

import type {TransformResult} from './transforms/index.js'

/**
 * Write a transformed guest file back (only when it changed), record the change with its before/after
 * text, and pass the transform's warnings on. Returns whether the file changed.
 */
export async function applyTransform(ctx: StageContext, stage: string, path: string, before: string, result: TransformResult): Promise<boolean> {
  for (const warning of result.warnings) ctx.warn('FIX_WARNING', `${path}: ${warning}`)
  if (result.text === before) return false
  const session = await ctx.guest.open()
  await session.writeFile(path, result.text)
  ctx.changes.record({after: result.text, before, path, reason: result.edits.map((e) => e.reason).filter((r, i, all) => all.indexOf(r) === i).join('; '), stage})
  ctx.log.info(`${stage}: changed ${path} (${result.edits.length} edit(s))`)
  return true
}
