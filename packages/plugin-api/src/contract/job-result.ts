import type {Inspection, JobWarning, OutputFormat, RecordedChange, VmMetadata} from './stage-types.js'
import type {PhaseName, StepStatus} from './job-events.js'

export interface StageRecord {
  id: string
  phase: PhaseName
  status: StepStatus
  durationMs: number
}

export interface OutputRecord {
  path: string
  format: OutputFormat
  disk: string | undefined
  virtualSize: number
  bytesOnDisk: number
  compression?: string
  sha256?: string
}

/** What `convert --json` prints and what `<name>.report.json` holds. */
export interface JobResult {
  jobId: string
  /**
   * `inspected`: `hyper2kvm inspect` stopped after INSPECT and wrote nothing. `planned`: `inspect --plan` ran the
   * fixers on a throw-away overlay (a dry run) and stopped after FIX; `changes` are what they would change.
   */
  status: 'succeeded' | 'inspected' | 'planned'
  input: {
    path: string
    loader: string
    plugin: string
    format: string
    subformat?: string
    notes: string[]
    /** How the loader recognised the input: by its bytes, or only by its name (a weaker claim). */
    claim: 'content' | 'extension'
  }
  vm?: VmMetadata
  inspection?: Inspection
  disks: Array<{label?: string; format: string; subformat?: string; virtualSize?: number; files: string[]}>
  outputs: OutputRecord[]
  stages: StageRecord[]
  warnings: JobWarning[]
  changes: readonly RecordedChange[]
  verification: Record<string, unknown>
  /** How the qemu processes that read the input ran: in the bubblewrap sandbox, or not (--no-sandbox). */
  sandbox: 'bwrap' | 'none'
  /** The report file (absent for `inspect`). */
  report?: string
  /** The libvirt domain written beside the outputs (--emit libvirt): `virsh define` it. */
  libvirtXml?: string
  startedAt: string
  durationMs: number
}
