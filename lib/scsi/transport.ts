/**
 * The one seam between mocopy and a SCSI device. The native addon (real drives) and the
 * software emulator both implement it, so every layer above runs unchanged on either.
 * A Transport knows how to move one CDB and its data; it knows nothing of retries,
 * sense decoding policy or the copy protocol.
 */

export type DataDirection = 'none' | 'in' | 'out';

export interface ScsiCommand {
  /** 6..16 bytes (the CDB as sent on the wire). */
  cdb: Uint8Array;
  direction: DataDirection;
  /**
   * 'in': the device fills it (its length is the allocation/transfer length asked for);
   * 'out': its bytes are sent; 'none': must be absent or empty.
   * Used in place: implementations must not copy it and must not touch it after settling.
   */
  data?: Buffer;
  /** Command timeout in milliseconds (> 0). */
  timeoutMs: number;
}

export interface ScsiResult {
  /** SCSI status byte (0x00 GOOD, 0x02 CHECK CONDITION, 0x08 BUSY, 0x18 RESERVATION CONFLICT, 0x28 TASK SET FULL). */
  status: number;
  /** Host adapter status (Linux DID_*: 0 ok, 0x01 NO_CONNECT, 0x03 TIME_OUT, 0x07 ERROR, ...). */
  hostStatus: number;
  /** Driver status (Linux DRIVER_*); obsolete on new kernels, passed up as-is. */
  driverStatus: number;
  /** Sense bytes actually returned (length 0 when none). */
  sense: Buffer;
  /** Bytes of `data` not transferred (requested - actual). */
  residual: number;
  /** Time the device took, in microseconds, as measured by the transport. */
  durationUs: number;
}

export interface TransportLimits {
  /** Largest data transfer of one command, in bytes; the device layer splits larger I/O. */
  maxTransferBytes: number;
  /** Required buffer address alignment in bytes (1 = none). */
  alignment: number;
}

export interface Transport {
  /** What was opened, for messages: '/dev/sg2', 'emu:disc.mo', ... */
  readonly path: string;
  readonly limits: TransportLimits;
  /** Resolves with the device's answer (including CHECK CONDITION); rejects only with TransportError (errno-level failure). */
  execute(cmd: ScsiCommand): Promise<ScsiResult>;
  /**
   * Optional: several commands handed over in one call, to reach the device back to back and in order (the
   * native addon submits them to the sg driver in one go). One promise per command, each as execute() gives.
   */
  executeBatch?(cmds: readonly ScsiCommand[]): Array<Promise<ScsiResult>>;
  close(): Promise<void>;
}

export const ScsiStatus = {
  GOOD: 0x00,
  CHECK_CONDITION: 0x02,
  CONDITION_MET: 0x04,
  BUSY: 0x08,
  RESERVATION_CONFLICT: 0x18,
  TASK_SET_FULL: 0x28,
  ACA_ACTIVE: 0x30,
  TASK_ABORTED: 0x40,
} as const;

/** Linux host byte values (include/scsi/scsi_status.h); the emulator reports timeouts the same way. */
export const HostStatus = {
  OK: 0x00,
  NO_CONNECT: 0x01,
  BUS_BUSY: 0x02,
  TIME_OUT: 0x03,
  BAD_TARGET: 0x04,
  ABORT: 0x05,
  PARITY: 0x06,
  ERROR: 0x07,
  RESET: 0x08,
  BAD_INTR: 0x09,
} as const;
