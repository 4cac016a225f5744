/**
 * mocopy's public API. The SCSI layer (one Transport, the native addon and the emulator behind it,
 * the device API above it), the media formats, the crypto, the copy protocol and the license center.
 */
export * from './errors.js';
export type { Transport, ScsiCommand, ScsiResult, TransportLimits, DataDirection } from './scsi/transport.js';
export { ScsiStatus, HostStatus } from './scsi/transport.js';
export type { BlockDevice, InquiryInfo, Capacity, MediumIdResult, StreamOptions } from './scsi/device-api.js';
export * as cdb from './scsi/cdb.js';
export * as parse from './scsi/parse.js';
export { parseSense, formatSense, senseKeyName, SenseKey, type SenseData } from './scsi/sense.js';
export { ascText } from './scsi/asc-table.js';
export { ScsiError, TransportError, checkResult } from './scsi/scsi-errors.js';
export { ScsiDevice, MediumChangedError, DEFAULT_TIMEOUTS, type DeviceOptions } from './scsi/device.js';
export { openDevice, openTransport, type OpenOptions } from './scsi/open.js';
export { openNative, NativeTransport } from './scsi/native-transport.js';
export { setNativeBinding, type NativeBinding } from './scsi/native-binding.js';
export { listDevices, type ListedDevice } from './scsi/list-devices.js';
export { probeMediumId, readMediumId, NoMediumIdError } from './scsi/medium-id.js';
export { loadQuirks, BUILTIN_QUIRKS, type Quirk, type MediumIdMethod } from './scsi/quirks.js';
export { defaultRetryPolicy, type RetryPolicy } from './scsi/retry.js';
export * as emulator from './emulator/index.js';
export { openEmulator, EmulatedDrive, createMoImage } from './emulator/index.js';
export { buildMaster, openMaster, readMasterProgram, decryptMasterProgram, type MasterCatalog, type CatalogEntry } from './formats/master.js';
export { copyLicensed, type CopyOptions, type CopyResult } from './protocol/station.js';
export { openCopy } from './protocol/open-copy.js';
export { verifyDisc } from './protocol/verify-disc.js';
export type { StationEvent } from './protocol/events.js';
export { LicenseCenter } from './center/center.js';
export { Ledger } from './center/ledger.js';
export { LocalCenterClient } from './center/local-client.js';
export { HttpCenterClient } from './center/http-client.js';
export { serveCenter, DEFAULT_PORT } from './center/server.js';
export { readStationKey, writeStationKey } from './center/station-key.js';
export type { CenterClient, License, LicenseA, LicenseB, LicenseRequest, Scheme, StationKey } from './center/types.js';
