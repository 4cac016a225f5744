/**
 * What the layers above the SCSI layer (media formats, the copy protocol, the CLI, the HIL suite)
 * may ask of a drive. `ScsiDevice` (lib/scsi/device.ts) implements it over any Transport.
 * Everything here talks in logical blocks of the medium's block size.
 */
import type { BufferPool } from './buffer-pool.js';
import type { Transport } from './transport.js';

export interface InquiryInfo {
  peripheralQualifier: number;
  /** 0x00 direct access, 0x05 CD/DVD, 0x07 optical memory, ... */
  peripheralType: number;
  removable: boolean;
  version: number;
  vendor: string;   // trimmed
  product: string;  // trimmed
  revision: string; // trimmed
}

export interface Capacity {
  blockSize: number;
  /** Number of logical blocks (last LBA + 1). */
  blockCount: number;
  /** blockSize * blockCount, as a bigint-safe number (media here are < 2^53 bytes). */
  bytes: number;
}

export interface MediumIdResult {
  /** The medium ID bytes from the non-rewritable zone (never the drive's unit serial). */
  id: Buffer;
  /** Which method produced it ('read-media-serial-number', 'vpd:0xc1', 'quirk:...'). */
  method: string;
  /** True when the method is a lab stand-in (e.g. a unit serial used for virtual drives): not for production. */
  standIn: boolean;
}

export interface ProgressInfo { bytes: number; total: number }

/**
 * Commands readStream/writeStream keep in flight unless told: 8, measured in the virtual rig (docs/hil-async.md):
 * QEMU's scsi-hd, which runs I/O in a thread of its own as real drives and HBAs queue it, moved 10–30% more at 8
 * than at 4 with 64 KiB commands; scsi_debug, which completes each command inside write(), lost nothing measurable.
 */
export const DEFAULT_IN_FLIGHT = 8;

export interface StreamOptions {
  /** Commands kept in flight (default DEFAULT_IN_FLIGHT). */
  inFlight?: number;
  /** Bytes per command (default: min(1 MiB, device max transfer), rounded to blocks). */
  chunkBytes?: number;
  onProgress?: (p: ProgressInfo) => void;
  signal?: AbortSignal;
  /**
   * readStream only: reuse a ring of inFlight+1 buffers. Each yielded buffer is valid only until the
   * next one is requested — for consumers that only hash or copy, it saves an allocation per command.
   */
  recycle?: boolean;
  /**
   * readStream takes its buffers from this pool (each as large as a command's transfer); writeStream gives back
   * each one it sent as is once its WRITE completed. For a pipeline where nothing else keeps a read buffer after
   * handing it on (one target, the bytes passed through): the copy then reuses a few buffers throughout.
   */
  pool?: BufferPool;
}

export interface BlockDevice {
  /** The spec it was opened with ('emu:disc.mo', '/dev/sg2'). */
  readonly spec: string;
  readonly transport: Transport;
  inquiry(): Promise<InquiryInfo>;
  unitSerial(): Promise<string | undefined>;
  testUnitReady(): Promise<void>;
  capacity(): Promise<Capacity>;
  /** Read `blocks` blocks at `lba` (split by the device's max transfer). */
  read(lba: number, blocks: number): Promise<Buffer>;
  /** Read into a caller buffer (length a multiple of the block size). */
  readInto(lba: number, target: Buffer): Promise<void>;
  /** Write whole blocks at `lba` (data length a multiple of the block size). `fua` forces unit access. */
  write(lba: number, data: Buffer, opts?: { fua?: boolean }): Promise<void>;
  /** VERIFY(10) with BYTCHK=0: the drive checks the medium itself. */
  verify(lba: number, blocks: number): Promise<void>;
  /** SYNCHRONIZE CACHE(10) over the whole medium. */
  sync(): Promise<void>;
  isWriteProtected(): Promise<boolean>;
  mediumId(): Promise<MediumIdResult>;
  /** PREVENT (true) / ALLOW (false) MEDIUM REMOVAL. */
  setRemovalPrevented(prevent: boolean): Promise<void>;
  eject(): Promise<void>;
  load(): Promise<void>;
  /** Stream blocks [lba, lba+blocks) with several commands in flight, in order. */
  readStream(lba: number, blocks: number, opts?: StreamOptions): AsyncIterable<Buffer>;
  /** Bytes per command of readStream and writeStream with these options (the size a shared BufferPool needs). */
  streamChunkBytes(opts?: StreamOptions): Promise<number>;
  /** Write a stream of whole-block buffers starting at `lba` with several commands in flight; resolves with blocks written. */
  writeStream(lba: number, source: AsyncIterable<Buffer>, opts?: StreamOptions): Promise<number>;
  /**
   * Count of UNIT ATTENTION conditions (medium changed / reset) seen since open. The copy protocol
   * snapshots it after reading the medium ID and aborts if it changes before commit.
   */
  readonly unitAttentionCount: number;
  /** While on, a medium-changed/reset UNIT ATTENTION fails commands (E_MEDIUM_CHANGED) instead of being retried. */
  setMediumGuard(on: boolean): void;
  close(): Promise<void>;
}
