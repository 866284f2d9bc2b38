import type {JobSettings} from '@hyper2kvm/plugin-api'

/** Boot test timeout: a TCG boot of a small Debian guest takes 20–50 s; slow guests get five minutes. */
export const DEFAULT_BOOT_TIMEOUT_SECONDS = 300

/** Every setting a job has, with the defaults `convert` uses when no flag says otherwise. */
export function defaultJobSettings(input: string, outputDir: string): JobSettings {
  return {
    accel: 'auto',
    allowBacking: false,
    boot: {timeoutSeconds: DEFAULT_BOOT_TIMEOUT_SECONDS, verify: false},
    checksum: false,
    compress: false,
    compression: 'zstd',
    emit: [],
    fix: {continueOnError: false, enabled: true, fstabMode: 'stabilize-all', grub: true, initramfs: true, initramfsMode: 'auto', keepVmwareTools: false},
    format: 'qcow2',
    input,
    keepMacs: false,
    outputDir,
    overwrite: false,
    sandbox: true,
    skipSpaceCheck: false,
    stageOptions: {},
    verify: false,
  }
}
