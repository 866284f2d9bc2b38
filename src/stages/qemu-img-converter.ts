import {convertImage} from '../qemu/qemu-img.js'
import type {PipelineStage} from '@hyper2kvm/plugin-api'

/**
 * CONVERT: one `qemu-img convert` per disk from the disk's spec (the source, or the overlay the fixers
 * wrote to) into `<output>.part`. Progress across all disks is reported in bytes of virtual size.
 */
export const qemuImgConverter: PipelineStage = {
  description: 'qemu-img convert to qcow2 (zstd/zlib compression), raw or vdi, written as .part',
  kind: 'converter',
  name: 'qemu-img',
  async run(ctx) {
    const total = ctx.outputs.reduce((sum, plan) => sum + (plan.disk.virtualSize ?? 0), 0)
    let done = 0
    for (const plan of ctx.outputs) {
      const size = plan.disk.virtualSize ?? 0
      const label = ctx.outputs.length > 1 ? `disk ${plan.index + 1}/${ctx.outputs.length}` : undefined
      ctx.report({bytesDone: done, bytesTotal: total, message: label, percent: total > 0 ? (done / total) * 100 : 0})
      await convertImage(
        {
          compress: ctx.job.compress,
          compression: ctx.job.compression,
          destination: plan.partPath,
          format: ctx.job.format,
          onProgress: (percent) => {
            const bytesDone = done + (size * percent) / 100
            ctx.report({bytesDone, bytesTotal: total, message: label, percent: total > 0 ? (bytesDone / total) * 100 : percent})
          },
          source: plan.disk.spec,
        },
        {files: plan.disk.files, phase: 'convert', sandbox: ctx.job.sandbox, signal: ctx.signal, stage: 'converter:qemu-img'},
      )
      done += size
    }
    ctx.report({bytesDone: total, bytesTotal: total, percent: 100})
  },
}
