/**
 * The public API for stage plugins. Plugins (first-party ones included) import only from
 * `hyper2kvm/plugin-api` and contribute stages through the `hyper2kvm:register` oclif hook.
 */
export type {
  BlockdevSpec,
  BootSettings,
  ChangeRecorder,
  ExecFunction,
  FileChange,
  Firmware,
  FixSettings,
  FstabEntry,
  GuestAccess,
  GuestSession,
  Inspection,
  InspectionRisk,
  KernelInfo,
  JobSettings,
  JobWarning,
  LoaderContext,
  LoaderStage,
  Logger,
  NetworkInterface,
  OutputPlan,
  PipelineStage,
  ProbeClaim,
  ProbeInput,
  ProgressUpdate,
  Source,
  SourceDisk,
  Stage,
  StageContext,
  StageKind,
  StageRegistration,
  VmMetadata,
} from './stages/stage-types.js'
export {PLUGIN_API_VERSION, STAGE_KINDS} from './stages/stage-types.js'
export {H2KError, isH2KError} from './errors/h2k-error.js'
export type {ErrorCode} from './errors/catalog.js'
export {DRIVER_REFERENCES, driverReferences, fileNode, formatNode, qemuFilename, sliceNode, specFiles, type DriverReferences, type NodePins} from './qemu/image-spec.js'
export {readQcow2References, type Qcow2References} from './formats/qcow2-header.js'
export {imageInfo, type ImageInfo} from './qemu/qemu-img.js'
export type {SandboxView} from './sandbox/sandbox-view.js'
export {resolveContainedFile} from './fs/contained-path.js'
export {readAt} from './fs/read-head.js'
export {safeFileStem} from './fs/safe-name.js'

import type {Stage, StageRegistration} from './stages/stage-types.js'
import {PLUGIN_API_VERSION} from './stages/stage-types.js'

/** Build a registration for the current API version: `export default async () => register(stages)`. */
export function register(...stages: Stage[]): StageRegistration {
  return {apiVersion: PLUGIN_API_VERSION, stages}
}
export {detectImageFormat, type MagicFormat} from './formats/image-magic.js'
export {validateSparseVmdk, type FileWindow, type SparseVmdkFacts} from './formats/vmdk-sparse.js'
export {scanArchive, scanGzipTar, scanTar, scanTarStream, MAX_TAR_MEMBERS, type DigestAlgorithm, type ScanArchiveOptions, type ScanTarOptions, type ScanTarStreamOptions, type TarMember, type TarScanProgress} from './archive/tar-reader.js'
export {peekTarNames} from './archive/tar-peek.js'
export {describeDiskInFile, type ByteWindow, type DescribeDiskOptions, type DiskInFile} from './archive/disk-in-file.js'
export {parseVmdkDescriptor, descriptorCapacityBytes, NO_PARENT_CID, type VmdkDescriptor, type VmdkExtent, type ExtentAccess, type ExtentType} from './formats/vmdk-descriptor.js'
