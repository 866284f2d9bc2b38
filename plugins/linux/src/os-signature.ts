import {type SourceDisk, type StageContext, qemuFilename, specFiles} from '@hyper2kvm/plugin-api'
import {readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

const HEAD_BYTES = 128 * 1024

/** Signatures of anything an operating system could live on: partition tables, filesystems, LVM, LUKS. */
function looksBootable(head: Buffer): boolean {
  const at = (offset: number, text: string) => head.subarray(offset, offset + text.length).toString('latin1') === text
  return (
    (head[510] === 0x55 && head[511] === 0xaa) ||
    at(512, 'EFI PART') ||
    at(512, 'LABELONE') ||
    at(0, 'LUKS\u00ba\u00be') ||
    at(0, 'XFSB') ||
    at(65_600, '_BHRfS_M') ||
    (head.length > 1081 && head.readUInt16LE(1080) === 0xef53) ||
    at(32_769, 'CD001')
  )
}

/**
 * Whether any disk could hold an operating system, from its first 128 KiB read through its qemu spec.
 * A blank or data-only disk set skips the appliance (tens of seconds under TCG) and says so.
 */
export async function mayHoldOs(ctx: StageContext, disks: readonly SourceDisk[]): Promise<boolean> {
  for (const [index, disk] of disks.entries()) {
    const out = join(ctx.workDir, `head-${index}.bin`)
    try {
      // Sandboxed, qemu-img sees the disk's own files (spec and loader-resolved) and writes only `out` (created here, so it can be bound).
      await writeFile(out, '')
      await ctx.exec('qemu-img', ['dd', '-O', 'raw', `if=${qemuFilename(disk.spec)}`, `of=${out}`, `bs=${HEAD_BYTES}`, 'count=1'], {
        sandbox: {readOnly: [...specFiles(disk.spec), ...disk.files], readWrite: [out]},
      })
      if (looksBootable(await readFile(out))) return true
    } finally {
      await rm(out, {force: true})
    }
  }
  return false
}
