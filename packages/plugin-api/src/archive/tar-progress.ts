import type {StageContext} from '../contract/stage-types.js'
import type {TarScanProgress} from './tar-reader.js'

/**
 * The `onProgress` of scanTar/scanArchive for a stage: each step of the scan becomes a `ctx.report` with
 * this message, bytes done and total, and a percentage when the total is known.
 */
export function tarScanReporter(ctx: Pick<StageContext, 'report'>, message: string): (progress: TarScanProgress) => void {
  return ({bytesDone, bytesTotal}) =>
    ctx.report({bytesDone, bytesTotal, message, ...(bytesTotal ? {percent: Math.min(100, Math.floor((bytesDone * 100) / bytesTotal))} : {})})
}
