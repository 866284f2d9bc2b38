import {formatNode, H2KError, type PipelineStage} from '@hyper2kvm/plugin-api'
import {checkImage, compareImages} from '../qemu/qemu-img.js'

/** VERIFY: `qemu-img check` of every output (raw has no metadata to check). */
export const qemuImgCheckVerifier: PipelineStage = {
  description: 'qemu-img check of every qcow2/vdi output',
  kind: 'verifier',
  name: 'qemu-img-check',
  async run(ctx) {
    const results = []
    for (const plan of ctx.outputs) {
      ctx.report({message: `checking ${plan.finalPath}`, percent: (plan.index / ctx.outputs.length) * 100})
      const check = await checkImage(formatNode(ctx.job.format, plan.partPath), {phase: 'verify', sandbox: ctx.job.sandbox, signal: ctx.signal, stage: 'verifier:qemu-img-check'})
      if (check.corruptions > 0 || check.checkErrors > 0) {
        throw new H2KError('H2K_VERIFY_FAILED', `qemu-img check found ${check.corruptions} corruption(s) in the output ${plan.finalPath}.`, {details: {...check}})
      }
      if (check.leaks > 0) ctx.warn('OUTPUT_LEAKED_CLUSTERS', `${plan.finalPath} has ${check.leaks} leaked cluster(s); harmless, but unusual.`)
      results.push({output: plan.finalPath, result: check.supported ? 'clean' : 'not applicable to this format'})
    }
    ctx.verification.check = results
  },
}

/** VERIFY (--verify): guest-visible contents of each output equal its source, by `qemu-img compare`. */
export const qemuImgCompareVerifier: PipelineStage = {
  after: ['qemu-img-check'],
  applies: (ctx) => ctx.job.verify,
  description: 'qemu-img compare of every output with its source (--verify)',
  kind: 'verifier',
  name: 'qemu-img-compare',
  async run(ctx) {
    const results = []
    for (const plan of ctx.outputs) {
      ctx.report({message: `comparing ${plan.finalPath}`, percent: (plan.index / ctx.outputs.length) * 100})
      const {identical, detail} = await compareImages(plan.disk.spec, formatNode(ctx.job.format, plan.partPath), {
        files: plan.disk.files,
        phase: 'verify',
        sandbox: ctx.job.sandbox,
        signal: ctx.signal,
        stage: 'verifier:qemu-img-compare',
      })
      if (!identical) throw new H2KError('H2K_VERIFY_FAILED', `The output ${plan.finalPath} differs from its source: ${detail}`, {details: {detail}})
      results.push({output: plan.finalPath, result: 'identical'})
    }
    ctx.verification.compare = results
  },
}
