/**
 * The error catalog: every stable code hyper2kvm can report, its process exit code, a one-line summary
 * and the default suggestions. The README's error table and `--help` texts are checked against it.
 */
export interface CatalogEntry {
  readonly exitCode: number
  readonly summary: string
  readonly suggestions: readonly string[]
  /** Retrying the same input cannot help (bad or hostile input, usage error). */
  readonly permanent: boolean
}

const entry = (exitCode: number, permanent: boolean, summary: string, ...suggestions: string[]): CatalogEntry => ({
  exitCode,
  permanent,
  suggestions,
  summary,
})

export const ERROR_CATALOG = {
  H2K_USAGE: entry(2, true, 'The command line or options are invalid.', 'Run the command with --help to see the accepted flags.'),
  H2K_JOB_INVALID: entry(2, true, 'A job file, manifest or configuration file is invalid (syntax, unknown key, wrong value, duplicate job name).', 'Run `hyper2kvm validate <file>`: every problem is listed with its file:line:column.'),
  H2K_INPUT_NOT_FOUND: entry(3, true, 'The input path does not exist or is not readable.', 'Check the path and its permissions.'),
  H2K_INPUT_EMPTY: entry(3, true, 'The input file is empty (0 bytes).', 'The upload or export was probably interrupted; export the disk again.'),
  H2K_INPUT_UNRECOGNIZED: entry(3, true, 'No loader recognises the input by its content.', 'Check that the file is a VMDK, OVA/OVF, VHD/VHDX, qcow2, raw or AMI export; `hyper2kvm plugins` lists the loaders.'),
  H2K_INPUT_CORRUPT: entry(3, true, 'The input image is truncated or its metadata is inconsistent.', 'Export or copy the disk again and compare its size and checksum with the source.'),
  H2K_INPUT_UNSUPPORTED: entry(3, true, 'The input is recognised but uses a variant hyper2kvm cannot convert.', 'Convert it to a supported variant on the source platform (for VMDK: vmkfstools -i disk.vmdk -d thin out.vmdk).'),
  H2K_EXTENT_MISSING: entry(3, true, 'A file the input refers to (VMDK extent, parent disk, OVF disk) does not exist.', 'Copy every file of the VM together, keeping the names the descriptor uses.'),
  H2K_OVF_INVALID: entry(3, true, 'The OVF descriptor is not valid OVF XML.', 'Re-export the appliance; check the .ovf opens in a text editor and is complete.'),
  H2K_UNSAFE_PATH: entry(4, true, 'The input names a file outside its own directory (absolute path, "..", or a symlink leaving it).', 'Place every extent next to its descriptor and refer to it by a plain relative name.'),
  H2K_UNSAFE_BACKING: entry(4, true, 'The input has a backing file that hyper2kvm will not open.', 'Keep parent disks in the same directory as the child (VMDK and AVHDX chains are then followed and flattened; qcow2 chains also need --allow-backing), or flatten the image on the source side.'),
  H2K_UNSAFE_ARCHIVE: entry(4, true, 'The archive holds a member hyper2kvm refuses (absolute or ".." name, link, device, oversize).', 'Rebuild the OVA with a standard exporter (ovftool, VirtualBox, vCenter).'),
  H2K_MANIFEST_MISMATCH: entry(4, true, 'A digest in the OVA/OVF manifest (.mf) does not match the file.', 'The appliance was altered or damaged in transit: download or export it again.'),
  H2K_OUTPUT_EXISTS: entry(5, true, 'The output file already exists.', 'Pass --overwrite to replace it, or choose another --output-dir or --name.'),
  H2K_NO_SPACE: entry(5, false, 'There is not enough free space for the output.', 'Free space in the output directory or choose another --output-dir.'),
  H2K_OUTPUT_FAILED: entry(5, false, 'Writing the output failed.', 'Check that the output directory is writable and the disk is healthy.'),
  H2K_TOOL_MISSING: entry(6, true, 'A required system tool is not installed.', 'Install it: apt-get install qemu-utils (see the README setup).'),
  H2K_TOOL_FAILED: entry(7, false, 'A system tool failed.', 'Re-run with --log-level debug to see the full command and its output.'),
  H2K_SANDBOX_UNAVAILABLE: entry(6, true, 'The bubblewrap sandbox that qemu runs in cannot be used (bwrap missing, or user namespaces disabled).', 'Install it: apt-get install bubblewrap (user namespaces must be allowed: sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0).', 'Or run qemu unsandboxed, knowingly: --no-sandbox (job file or daemon config: sandbox: false).'),
  H2K_RESOURCE_LIMIT: entry(4, true, 'Inspecting the input exceeded its memory or CPU limit; the image header is probably hostile or corrupt.', 'Check where the image came from; a genuine image never needs this much to describe itself.'),
  H2K_CONVERT_FAILED: entry(7, false, 'qemu-img convert failed.', 'Re-run with --log-level debug; check the input with qemu-img check.'),
  H2K_VERIFY_FAILED: entry(8, false, 'The converted output failed verification (qemu-img check or compare).', 'Keep the input; re-run the conversion and report the mismatch with --log-level debug output.'),
  H2K_BOOT_FAILED: entry(8, false, 'The converted guest did not boot to a login prompt on virtio.', 'Read the serial console excerpt in the report; re-run with --log-level debug, or convert without --verify-boot (and with verify_boot: false in a job or config file) to inspect the disk by hand.'),
  H2K_GUEST_FAILED: entry(7, false, 'The libguestfs appliance failed to start or a guest operation failed.', 'Check `libguestfs-test-tool`; on hosts where KVM hangs, pass --accel tcg.'),
  H2K_FIX_FAILED: entry(7, false, 'A guest fixer failed; the output would probably not boot.', 'The message names the fixer and the tool output; fix the guest on the source side, or pass --continue-on-fix-error to convert anyway.'),
  H2K_PLUGIN_FAILED: entry(9, false, 'A stage plugin failed to load or register its stages.', 'Run `hyper2kvm plugins` to see which plugin failed and why; update or uninstall it.'),
  H2K_PLUGIN_INVALID: entry(9, true, 'A stage plugin returned an invalid registration (unknown API version, duplicate or malformed stage).', 'Update the plugin to a version built for this hyper2kvm, or uninstall it.'),
  H2K_STAGE_OPTIONS_INVALID: entry(2, true, 'Options given for a stage (--stage-option, stage_options:) are refused: no stage has that id, the stage takes no options, or its schema rejects them.', '`hyper2kvm plugins` lists the stage ids; the message names where each refused option was given (file:line:column or --stage-option) and what the stage expects.'),
  H2K_STAGE_FAILED: entry(7, false, 'A pipeline stage failed.', 'The message names the stage; re-run with --log-level debug for details.'),
  H2K_CANCELLED: entry(130, false, 'The job was cancelled (Ctrl-C or a stop request).', 'Run it again; nothing was left half-written.'),
  H2K_JOB_STATE: entry(2, true, 'The daemon job or schedule is not in a state that allows this (cancel a finished job, retry one that did not fail, purge one that is not dead; change a schedule of the configuration file, or take a schedule id in use).', '`hyper2kvm ctl job ID` shows its status and history; a schedule of the configuration file is changed there (then SIGHUP).'),
  H2K_NOT_FOUND: entry(2, true, 'The daemon has no job or schedule with this id (or the id prefix is not unique, or the job is not one the request serves, e.g. not dead for the dead-letter queue).', '`hyper2kvm jobs list` and `hyper2kvm schedule list` show the ids.'),
  H2K_DEPENDENCY_FAILED: entry(12, false, 'The daemon job was skipped: a job it depends on (depends_on) did not succeed.', 'Fix and retry the failed job (`hyper2kvm jobs retry ID`, `dlq retry ID` for a dead one): its skipped dependents run again with it.'),
  H2K_STORE_FAILED: entry(11, false, 'The daemon job store (SQLite in output_dir/.daemon/) could not be opened, read or written.', 'Check that output_dir/.daemon/ is writable and its disk not full; `hyper2kvm ctl jobs` shows whether the store can be read.'),
  H2K_STORE_UNAVAILABLE: entry(11, false, 'The job store\'s PostgreSQL server cannot be reached (down, restarting, refusing the connection or the password) or did not answer within statement_timeout, or the connection was lost during a write.', 'Check that the server runs and accepts this host (pg_hba.conf), the store URL and the store.password; a running daemon retries each call for statement_timeout, then fails calls at once until a background probe reaches the server again; `hyper2kvm ctl status` shows the store\'s URL (never its password).'),
  H2K_LEASE_LOST: entry(11, false, 'This daemon lost the lease of a running job (it could not renew it in time, or another node took the job over after it expired): the attempt\'s work is abandoned and the job runs again on whichever node claims it.', 'Check the node\'s road to the PostgreSQL store and its load; lease_ttl must stay well above heartbeat_interval (lease_ttl >= 3 x heartbeat_interval + store.statement_timeout).'),
  H2K_DAEMON_NOT_RUNNING: entry(12, false, 'No daemon answers on the control socket (not running, or another --output-dir), or it is still starting.', 'Start it with `hyper2kvm daemon --config FILE`, or pass the daemon\'s --output-dir (the socket is output_dir/.daemon/control.sock); a starting daemon answers once it logged daemon:start.'),
  H2K_DAEMON_RUNNING: entry(12, true, 'A daemon already runs with this output directory.', 'Stop it with `hyper2kvm ctl stop --output-dir DIR`, or use another output_dir.'),
  H2K_DAEMON_ACCESS_DENIED: entry(12, true, 'Permission denied on the daemon\'s control socket (mode 0600 in a 0700 directory: only the daemon\'s user and root may use it).', 'Run ctl as the daemon\'s user (`sudo -u hyper2kvm hyper2kvm ctl status --output-dir DIR`) or as root.'),
  H2K_DAEMON_TIMEOUT: entry(12, false, 'The daemon did not answer on its control socket in time.', 'It may be overloaded or hung: check its log; `kill -TERM` it if it does not recover.'),
  H2K_SECRET_UNSAFE: entry(4, true, 'A secret file (a `*_file` key) is refused: not a regular file, a symlink, owned by another user, readable by group or others, or too large.', 'Make it a regular file owned by the daemon\'s user (or root) with mode 0600 or 0400: `chmod 600 FILE`; or use the keychain (`hyper2kvm secrets set NAME`) or a systemd credential (LoadCredential=).'),
  H2K_SECRET_UNAVAILABLE: entry(6, true, 'A secret cannot be read or stored: its file is missing or unreadable, or no OS keychain (Secret Service) is reachable.', 'On a server without a desktop session, give the secret as a systemd credential (LoadCredential=NAME:/path in the unit) or a 0600 file named by the `*_file` key; `hyper2kvm secrets list` shows where each secret comes from.'),
  H2K_LISTEN_FAILED: entry(12, false, 'The daemon\'s HTTP listener (metrics, health) could not listen on its address and port.', 'Another process uses the port (`ss -ltnp` shows which): stop it, or set metrics.port (and metrics.address) to a free one.'),
  H2K_API_REFUSED: entry(12, true, 'The daemon\'s REST API refused the request: no or wrong token (401), too many requests (429), a body too large (413) or not JSON (415).', 'Pass the API token (--token-file, HYPER2KVM_API_TOKEN, or api.token of the daemon configuration given with --config); after a 429 wait the Retry-After seconds; `hyper2kvm jobs --help` lists the commands.'),
  H2K_INTERNAL: entry(1, false, 'An unexpected internal error.', 'Please report it with the --log-level debug output.'),
} as const satisfies Record<string, CatalogEntry>

export type ErrorCode = keyof typeof ERROR_CATALOG

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOG, code)
}
