/**
 * @hyper2kvm/plugin-api: the stage-plugin contract, the one error type (H2KError and its stable codes) and
 * the small pure toolkit plugins share with the host. ESM only. It imports nothing but node builtins.
 *
 * Third-party plugins import TYPES from here (`import type`, a devDependency) and take runtime values from
 * the `api` the host passes to their `hyper2kvm:register` hook; the host's bundled plugins import it directly.
 */
export * from './contract/stage-types.js'
export * from './contract/tool-types.js'
export * from './contract/job-events.js'
export * from './contract/job-result.js'
export {REGISTER_HOOK, register, type HostServices, type PluginApi, type RegisterHook, type RegisterHookOptions} from './contract/register.js'

export {H2KError, isH2KError, type H2KErrorOptions, type Phase} from './errors/h2k-error.js'
export {isErrorCode, type ErrorCode} from './errors/catalog.js'

export {fileNode, formatNode, qemuFilename, sliceNode, specFiles, type NodePins} from './qemu/image-spec.js'
export {resolveContainedFile} from './fs/contained-path.js'
export {readAt, readExact, readUpTo} from './fs/read-head.js'
export {readBoundedText, TEXT_LIMIT, type BoundedTextOptions} from './fs/bounded-text.js'
export {safeFileStem} from './fs/safe-name.js'
export {isUnicastMac} from './net/mac-address.js'

export {detectImageFormat, isGzip, type MagicFormat} from './formats/image-magic.js'
export {BARE_FILESYSTEM_HEAD, detectBareFilesystem, hasPartitionTable, isBareFilesystemDisk, type BareFilesystem, type BareFilesystemType} from './formats/bare-filesystem.js'
export {readQcow2References, type Qcow2References} from './formats/qcow2-header.js'
export {parseVmdkDescriptor, descriptorCapacityBytes, NO_PARENT_CID, type VmdkDescriptor, type VmdkExtent, type ExtentAccess, type ExtentType} from './formats/vmdk-descriptor.js'
export {validateSparseVmdk, type FileWindow, type SparseVmdkFacts} from './formats/vmdk-sparse.js'

export {scanArchive, scanTar, MAX_TAR_MEMBERS, type DigestAlgorithm, type ScanArchiveOptions, type ScanTarOptions, type TarMember, type TarScanProgress} from './archive/tar-reader.js'
export {peekTarNames} from './archive/tar-peek.js'
export {tarScanReporter} from './archive/tar-progress.js'
export {describeDiskInFile, type ByteWindow, type DescribeDiskOptions, type DiskInFile} from './archive/disk-in-file.js'
