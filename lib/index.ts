/**
 * mocopy's public API, and the one module the CLI imports from. Layers, top to bottom: the station
 * (protocol), the master and target media, the pure formats and the crypto, the license center, the
 * device factory, the SCSI layer (one Transport; the native addon and the emulator behind it).
 */
export * from './errors.js';
export * from './domain/index.js';
export type { Transport, ScsiCommand, ScsiResult, TransportLimits, DataDirection } from './scsi/transport.js';
export { ScsiStatus, HostStatus } from './scsi/transport.js';
export type { BlockDevice, InquiryInfo, Capacity, MediumIdResult, StreamOptions } from './scsi/device-api.js';
export * as cdb from './scsi/cdb.js';
export { cdbHex, opcodeName } from './scsi/cdb.js';
export * as parse from './scsi/parse.js';
export { peripheralTypeName } from './scsi/parse.js';
export { parseSense, formatSense, senseKeyName, decodeSenseKeySpecific, SenseKey, type SenseData } from './scsi/sense.js';
export { ascText, ascName } from './scsi/asc-table.js';
export { ScsiError, TransportError, DeviceAnswerError, ShortTransferError, checkResult, statusName, hostStatusName } from './scsi/scsi-errors.js';
export { MAX_MEDIA_SERIAL_BYTES } from './scsi/medium-id.js';
export { ScsiDevice, MediumChangedError, DEFAULT_TIMEOUTS, SHORT_TRANSFER_ATTEMPTS, BLOCK_SIZES, type DeviceOptions } from './scsi/device.js';
export { openNative, NativeTransport } from './scsi/native-transport.js';
export { setNativeBinding, type NativeBinding } from './scsi/native-binding.js';
export { listDevices, type ListedDevice } from './scsi/list-devices.js';
export { probeMediumId, readMediumId, NoMediumIdError } from './scsi/medium-id.js';
export { loadQuirks, BUILTIN_QUIRKS, type Quirk, type MediumIdMethod } from './scsi/quirks.js';
export { defaultRetryPolicy, type RetryPolicy } from './scsi/retry.js';
export * as emulator from './emulator/index.js';
export { openEmulator, EmulatedDrive, createMoImage, parseSize, MO_HEADER_SIZE } from './emulator/index.js';
export { openDevice, openTransport, isRealDeviceSpec, type OpenOptions } from './drives/open.js';
export { serveEmulatedDrives, type ServedDrives, type ServedLun } from './drives/serve.js';
export { IscsiTarget, DEFAULT_ISCSI_PORT, type IscsiLun, type IscsiTargetConfig } from './iscsi/index.js';
export { CATALOG_PATH, decodeCatalog, encodeCatalog, type MasterCatalog, type CatalogEntry } from './formats/catalog.js';
export { buildMaster, type MasterContentSpec, type BuildMasterResult } from './master/build.js';
export { openMaster, findContent, readMasterProgram, decryptMasterProgram, type OpenedMaster } from './master/read.js';
export { TargetDisc } from './target/disc.js';
export { copyLicensed, copyToTargets, type CopyOptions, type CopyResult, type MultiCopyOptions, type TargetOutcome } from './protocol/station.js';
export { openCopy } from './protocol/open-copy.js';
export { runDuplicator, type DuplicatorEvent, type DuplicatorOptions, type Tally, type DiscOutcome, type DriveState } from './protocol/duplicator.js';
export { verifyDisc } from './protocol/verify-disc.js';
export type { StationEvent } from './protocol/events.js';
export { LicenseCenter } from './center/center.js';
export { Ledger, LATEST_SCHEMA, isPostgresUrl, redactPostgresUrl, migrateLedger, openLedger, LedgerError, LedgerUnavailableError, LedgerWriteError, type LedgerDump, type LedgerReport } from './center/ledger.js';
export { LocalCenterClient } from './center/local-client.js';
export { exportLedger, importLedger, type TransferCounts } from './center/transfer.js';
export { HttpCenterClient } from './center/http-client.js';
export { parseLogFormat, parseLogLevel, type LogFormat, type LogLevel } from './center/log.js';
export { serveCenter, DEFAULT_PORT, type ConsoleHandler, type RunningCenter, type ServeOptions } from './center/server.js';
export { readStationKey, writeStationKey } from './center/station-key.js';
export { CenterRefusal, type CenterClient, type ContentInfo } from './center/types.js';
export * as centerAuth from './center/http-auth.js';
export { resolveStationSettings, type StationFlags, type StationSettings } from './config.js';
export { createProgress } from './progress.js';
export type { ConsoleOptions } from './center/console/console.js';
export { createConsoleLazily } from './center/console/lazy.js';
export { hashPassword, verifyPassword, generatePassword, OPERATOR_NAME, MIN_PASSWORD_LENGTH } from './center/console/password.js';
