/**
 * `@hyper2kvm/plugin-api/host`: pieces of this package the hyper2kvm host uses that are NOT part of the plugin
 * API (no stability promise; plugins must not import this entry — test/unit/import-boundaries.test.ts holds it).
 */
export {ERROR_CATALOG, type CatalogEntry} from './errors/catalog.js'
export {snakeCaseKey, snakeCaseKeys} from './errors/json-keys.js'
export {relativeInside} from './fs/contained-path.js'
export {looksLikeVmdkDescriptor} from './formats/image-magic.js'
export {chainLayers, DRIVER_REFERENCES, driverReferences, formatNodes, type DriverReferences} from './qemu/image-spec.js'
export {scanGzipTar, scanTarStream, type ScanTarStreamOptions} from './archive/tar-reader.js'
export {isZeroBlock, paddedSize, parsePaxRecords, parseTarHeader, paxSize, TAR_BLOCK} from './archive/tar-header.js'
