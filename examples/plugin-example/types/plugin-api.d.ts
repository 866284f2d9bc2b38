/**
 * TEMPORARY stand-in for the `@hyper2kvm/plugin-api` types package until it exists in this tree (#11): the
 * same types, taken from the host's build. tsconfig.json maps the package name here with `paths`; once the
 * package exists, delete this folder and that `paths` entry, nothing else changes.
 */
import type {PipelineStage as HostPipelineStage, StageContext as HostStageContext} from '../../../dist/plugin-api.js'

export type * from '../../../dist/plugin-api.js'
export type {PluginApi} from '../../../dist/hooks/hook-types.js'

/** Stage options (#11): the options a user set for this stage, validated against its schema. */
export interface StageContext extends HostStageContext {
  readonly options?: Readonly<Record<string, unknown>>
}

/** Stage options (#11): a stage declares the JSON Schema of its options. */
export interface PipelineStage extends Omit<HostPipelineStage, 'applies' | 'run'> {
  options?: {schema: Record<string, unknown>}
  applies?(ctx: StageContext): boolean | Promise<boolean>
  run(ctx: StageContext): Promise<void>
}
