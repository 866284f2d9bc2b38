import type {Phase} from '../errors/h2k-error.js'

/**
 * What a sandboxed tool may see of the host, besides the system files every tool needs to run (/usr,
 * the dynamic loader's cache, a minimal /dev, its own /proc and a private /tmp). Everything else of the
 * host file system does not exist inside the sandbox. The host builds the sandbox; a stage only states the view.
 */
export interface SandboxView {
  /** Files it reads (the input's own files): bound read-only at their own paths. */
  readOnly: readonly string[]
  /** Files or directories it writes (a `.part` output, the job's work directory): bound read-write. */
  readWrite: readonly string[]
  /** Device nodes beyond /dev/null, zero, random, urandom, tty (e.g. /dev/kvm for the boot test). */
  devices?: readonly string[]
  /** TMPDIR inside the sandbox: a directory in `readWrite`; default the private /tmp. */
  tmpDir?: string
}

export interface ResourceLimits {
  /** Maximum address space in bytes (prlimit --as). */
  addressSpaceBytes: number
  /** Maximum CPU time in seconds (prlimit --cpu). */
  cpuSeconds: number
}

/** How a tool is run (`ctx.exec`): argv only, never a shell string. */
export interface ToolOptions {
  signal?: AbortSignal
  /** Run under prlimit with these limits: for tools that parse untrusted image headers. */
  limits?: ResourceLimits
  /** Called with every chunk the tool writes to stdout (progress parsing). */
  onStdout?: (chunk: string) => void
  env?: Record<string, string>
  cwd?: string
  input?: string
  phase?: Phase
  stage?: string
  /** Send stdout and stderr to this file instead of pipes: for tools that daemonize and keep them open. */
  stdoutFile?: string
  /** Exit codes that are answers, not failures (e.g. `qemu-img compare` exits 1 for "different"). */
  acceptExitCodes?: readonly number[]
  /**
   * The tool reads untrusted bytes: run it in a bubblewrap sandbox that shows it only this view (and the
   * system files it needs). `false`: it would be, but the job runs with --no-sandbox. Absent: a tool that
   * reads nothing untrusted. Every child not sandboxed gets a parent-death signal instead.
   */
  sandbox?: SandboxView | false
}

export interface ToolResult {
  stdout: string
  stderr: string
  exitCode: number
  /** The argv that ran, for logs and reports (never contains secrets: callers pass none). */
  command: readonly string[]
  /** Whether it ran inside the bwrap sandbox. */
  sandboxed: boolean
}

/** `qemu-img info --output=json` of an image, as far as hyper2kvm reads it. */
export interface ImageInfo {
  'virtual-size': number
  'actual-size'?: number
  format: string
  'backing-filename'?: string
  'full-backing-filename'?: string
  'backing-filename-format'?: string
  'dirty-flag'?: boolean
  'format-specific'?: {type: string; data: Record<string, unknown>}
}
