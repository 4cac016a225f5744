/**
 * Typed SCSI failures. Every failed command surfaces as one of these, carrying the device,
 * the command name, the CDB bytes and the decoded sense, so a technician's message and a lab
 * report both say exactly what the drive answered.
 */
import { ExitCode, MocopyError } from '../errors.js';
import { cdbHex, opcodeName } from './cdb.js';
import { formatSense, parseSense, SenseKey, type SenseData } from './sense.js';
import { HostStatus, ScsiStatus, type ScsiCommand, type ScsiResult } from './transport.js';

const STATUS_NAMES: Record<number, string> = {
  0x00: 'GOOD', 0x02: 'CHECK CONDITION', 0x04: 'CONDITION MET', 0x08: 'BUSY', 0x18: 'RESERVATION CONFLICT',
  0x28: 'TASK SET FULL', 0x30: 'ACA ACTIVE', 0x40: 'TASK ABORTED',
};
const HOST_NAMES: Record<number, string> = {
  0x00: 'DID_OK', 0x01: 'DID_NO_CONNECT', 0x02: 'DID_BUS_BUSY', 0x03: 'DID_TIME_OUT', 0x04: 'DID_BAD_TARGET',
  0x05: 'DID_ABORT', 0x06: 'DID_PARITY', 0x07: 'DID_ERROR', 0x08: 'DID_RESET', 0x09: 'DID_BAD_INTR',
  0x0a: 'DID_PASSTHROUGH', 0x0b: 'DID_SOFT_ERROR', 0x0c: 'DID_IMM_RETRY', 0x0d: 'DID_REQUEUE',
  0x0e: 'DID_TRANSPORT_DISRUPTED', 0x0f: 'DID_TRANSPORT_FAILFAST', 0x11: 'DID_TRANSPORT_MARGINAL',
};

export function statusName(s: number): string {
  return STATUS_NAMES[s] ?? `status 0x${s.toString(16).padStart(2, '0')}`;
}
export function hostStatusName(h: number): string {
  return HOST_NAMES[h] ?? `host status 0x${h.toString(16).padStart(2, '0')}`;
}

export class ScsiError extends MocopyError {
  readonly device: string;
  readonly command: string;
  readonly cdbHex: string;
  readonly status: number;
  readonly sense: SenseData | undefined;
  readonly senseKey: number;
  readonly asc: number;
  readonly ascq: number;
  readonly senseText: string;
  constructor(device: string, cdb: Uint8Array, status: number, sense: SenseData | undefined, hint?: string) {
    const command = opcodeName(cdb);
    const hex = cdbHex(cdb);
    const senseText = sense ? formatSense(sense) : status === ScsiStatus.CHECK_CONDITION ? 'no sense data returned' : statusName(status);
    const what = status === ScsiStatus.CHECK_CONDITION ? senseText : `${statusName(status)}${sense ? ` (${senseText})` : ''}`;
    super('E_SCSI_CHECK', `${device}: ${command} [${hex}] failed: ${what}`, { exitCode: ExitCode.SCSI_CHECK, ...(hint ? { hint } : {}) });
    this.device = device;
    this.command = command;
    this.cdbHex = hex;
    this.status = status;
    this.sense = sense;
    this.senseKey = sense?.senseKey ?? -1;
    this.asc = sense?.asc ?? -1;
    this.ascq = sense?.ascq ?? -1;
    this.senseText = senseText;
  }
  /** True when the sense matches key and (optionally) ASC/ASCQ. */
  is(key: number, asc?: number, ascq?: number): boolean {
    return this.senseKey === key && (asc === undefined || this.asc === asc) && (ascq === undefined || this.ascq === ascq);
  }
  toJSON(): Record<string, unknown> {
    return {
      code: this.code, device: this.device, command: this.command, cdb: this.cdbHex, status: this.status,
      senseKey: this.senseKey, asc: this.asc, ascq: this.ascq, senseText: this.senseText, message: this.message,
      information: this.sense?.information !== undefined ? this.sense.information.toString() : undefined,
    };
  }
}

export interface TransportErrorInit {
  device: string;
  command?: string;
  cdb?: Uint8Array;
  code?: string;
  errno?: number;
  hostStatus?: number;
  driverStatus?: number;
  timedOut?: boolean;
  message: string;
  hint?: string;
  cause?: unknown;
}

export class TransportError extends MocopyError {
  readonly device: string;
  readonly command: string | undefined;
  readonly cdbHex: string | undefined;
  readonly errno: number | undefined;
  readonly hostStatus: number | undefined;
  readonly driverStatus: number | undefined;
  readonly timedOut: boolean;
  constructor(init: TransportErrorInit) {
    const code = init.timedOut ? 'E_TIMEOUT' : init.code ?? 'E_TRANSPORT';
    super(code, init.message, { exitCode: ExitCode.DEVICE, ...(init.hint ? { hint: init.hint } : {}), ...(init.cause !== undefined ? { cause: init.cause } : {}) });
    this.device = init.device;
    this.command = init.command ?? (init.cdb ? opcodeName(init.cdb) : undefined);
    this.cdbHex = init.cdb ? cdbHex(init.cdb) : undefined;
    this.errno = init.errno;
    this.hostStatus = init.hostStatus;
    this.driverStatus = init.driverStatus;
    this.timedOut = !!init.timedOut;
  }
}

/** The drive answered GOOD but its answer cannot be true (a length past any limit, an impossible capacity). */
export class DeviceAnswerError extends TransportError {
  constructor(device: string, cdb: Uint8Array, detail: string) {
    super({
      device, cdb, code: 'E_BAD_ANSWER',
      message: `${device}: ${opcodeName(cdb)} [${cdbHex(cdb)}]: the drive's answer is not credible: ${detail}`,
      hint: 'the drive or its firmware misbehaves: try another drive; `mocopy raw` shows its raw answer',
    });
  }
}

/** A READ answered GOOD but moved fewer bytes than asked for, again after the retries: the missing bytes never reach a caller. */
export class ShortTransferError extends TransportError {
  constructor(device: string, cdb: Uint8Array, readonly requested: number, readonly residual: number, attempts: number) {
    super({
      device, cdb, code: 'E_SHORT_TRANSFER',
      message: `${device}: ${opcodeName(cdb)} [${cdbHex(cdb)}] returned GOOD with ${residual} of ${requested} bytes not transferred (${attempts} attempts)`,
      hint: 'the drive or the cable drops data: check the connection, or try another drive',
    });
  }
}

/**
 * Turns a transport's answer into success or a typed error. RECOVERED ERROR and NO SENSE are not
 * failures (the data is good); everything else that is not GOOD is.
 */
export function checkResult(device: string, cmd: ScsiCommand, result: ScsiResult): void {
  if (result.hostStatus !== HostStatus.OK) {
    const timedOut = result.hostStatus === HostStatus.TIME_OUT;
    throw new TransportError({
      device, cdb: cmd.cdb, hostStatus: result.hostStatus, driverStatus: result.driverStatus, timedOut,
      message: `${device}: ${opcodeName(cmd.cdb)} [${cdbHex(cmd.cdb)}] ${timedOut ? `timed out after ${cmd.timeoutMs} ms` : `failed in the host adapter: ${hostStatusName(result.hostStatus)}`}`,
      ...(timedOut ? { hint: 'the drive did not answer in time: check the cable/power, or raise --timeout for slow media' } : {}),
    });
  }
  if (result.status === ScsiStatus.GOOD || result.status === ScsiStatus.CONDITION_MET) return;
  const sense = parseSense(result.sense);
  if (result.status === ScsiStatus.CHECK_CONDITION && sense &&
      (sense.senseKey === SenseKey.RECOVERED_ERROR || (sense.senseKey === SenseKey.NO_SENSE && sense.asc === 0 && !sense.ili))) return;
  throw new ScsiError(device, cmd.cdb, result.status, sense, hintFor(sense));
}

function hintFor(s: SenseData | undefined): string | undefined {
  if (!s) return undefined;
  if (s.senseKey === SenseKey.NOT_READY && s.asc === 0x3a) return 'insert a disc in the drive';
  if (s.senseKey === SenseKey.DATA_PROTECT) return 'the disc is write-protected: slide its write-protect tab off, or use another disc';
  if (s.senseKey === SenseKey.MEDIUM_ERROR) return 'the disc has a bad area: clean it, or use another disc';
  if (s.senseKey === SenseKey.UNIT_ATTENTION && s.asc === 0x28) return 'the disc was changed: start again with the disc you want to use';
  return undefined;
}

export function isScsiError(e: unknown): e is ScsiError {
  return e instanceof ScsiError;
}
export const isUnitAttention = (e: unknown) => e instanceof ScsiError && e.senseKey === SenseKey.UNIT_ATTENTION;
export const isMediumChanged = (e: unknown) => e instanceof ScsiError && e.senseKey === SenseKey.UNIT_ATTENTION && (e.asc === 0x28 || e.asc === 0x29);
export const isBecomingReady = (e: unknown) => e instanceof ScsiError && e.senseKey === SenseKey.NOT_READY && e.asc === 0x04 && (e.ascq === 0x01 || e.ascq === 0x07);
export const isNoMedium = (e: unknown) => e instanceof ScsiError && e.senseKey === SenseKey.NOT_READY && e.asc === 0x3a;
export const isMediumError = (e: unknown) => e instanceof ScsiError && e.senseKey === SenseKey.MEDIUM_ERROR;
export const isInvalidOpcode = (e: unknown) => e instanceof ScsiError && e.senseKey === SenseKey.ILLEGAL_REQUEST && e.asc === 0x20;
export const isInvalidField = (e: unknown) => e instanceof ScsiError && e.senseKey === SenseKey.ILLEGAL_REQUEST && e.asc === 0x24;
