/**
 * iSCSI PDUs (RFC 7143 §11), pure: the 48-byte Basic Header Segment of each opcode to typed values and back,
 * the data segment's padding and the digests. Bytes in, values out: no sockets, no state.
 */
import { crc32c } from '@node-rs/crc32';

export const BHS_BYTES = 48;
export const DIGEST_BYTES = 4;
/** The data segment length field is 24 bits. */
export const MAX_DATA_SEGMENT = 0xffffff;
export const RESERVED_TAG = 0xffffffff;

/** Initiator opcodes (§11.1.1). */
export const Op = {
  NOP_OUT: 0x00, SCSI_COMMAND: 0x01, TASK_MGMT: 0x02, LOGIN: 0x03, TEXT: 0x04, DATA_OUT: 0x05, LOGOUT: 0x06, SNACK: 0x10,
} as const;
/** Target opcodes. */
export const TOp = {
  NOP_IN: 0x20, SCSI_RESPONSE: 0x21, TASK_MGMT_RESPONSE: 0x22, LOGIN_RESPONSE: 0x23, TEXT_RESPONSE: 0x24, DATA_IN: 0x25,
  LOGOUT_RESPONSE: 0x26, R2T: 0x31, ASYNC: 0x32, REJECT: 0x3f,
} as const;

export const RejectReason = {
  DATA_DIGEST: 0x02, SNACK_REJECT: 0x03, PROTOCOL_ERROR: 0x04, NOT_SUPPORTED: 0x05, IMMEDIATE_REJECT: 0x06,
  TASK_IN_PROGRESS: 0x07, INVALID_DATA_ACK: 0x08, INVALID_FIELD: 0x09, LONG_OP_REJECT: 0x0a, WAITING_FOR_LOGOUT: 0x0c,
} as const;

/** The fields every initiator PDU has, and the raw header for what is opcode-specific. */
export interface InitiatorPdu {
  opcode: number;
  immediate: boolean;
  final: boolean;
  /** Byte 1 as sent (flags and opcode-specific bits). */
  flags: number;
  ahsLength: number;
  dataLength: number;
  lun: Buffer;
  itt: number;
  /** Bytes 20-23: TTT, expected data transfer length, CID... per opcode. */
  word20: number;
  /** CmdSN (24-27) for commands; ExpStatSN for Data-Out is at 28. */
  cmdSN: number;
  expStatSN: number;
  header: Buffer;
  data: Buffer;
}

export class PduFormatError extends Error {
  constructor(message: string, readonly reason: number = RejectReason.PROTOCOL_ERROR) {
    super(message);
  }
}

export function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** Total bytes on the wire for a PDU whose header is `bhs`, given the digests in force. */
export function wireLength(bhs: Buffer, headerDigest: boolean, dataDigest: boolean): number {
  const ahs = bhs[4]! * 4;
  const data = bhs.readUIntBE(5, 3);
  return BHS_BYTES + ahs + (headerDigest ? DIGEST_BYTES : 0) + pad4(data) + (data > 0 && dataDigest ? DIGEST_BYTES : 0);
}

export function digest(...parts: Buffer[]): number {
  let c = 0;
  for (const p of parts) c = crc32c(p, c);
  return c >>> 0;
}

/** Decodes one complete PDU (header, AHS, digests, data) from its wire bytes. */
export function decodePdu(wire: Buffer, headerDigest: boolean, dataDigest: boolean): InitiatorPdu {
  if (wire.length < BHS_BYTES) throw new PduFormatError(`PDU of ${wire.length} bytes is shorter than a header`);
  const header = wire.subarray(0, BHS_BYTES);
  if (wire.length < wireLength(header, headerDigest, dataDigest)) throw new PduFormatError('truncated PDU');
  const ahsLength = header[4]! * 4;
  const dataLength = header.readUIntBE(5, 3);
  let at = BHS_BYTES + ahsLength;
  if (headerDigest) {
    const want = digest(wire.subarray(0, at));
    if (wire.readUInt32LE(at) !== want) throw new PduFormatError('header digest error');
    at += DIGEST_BYTES;
  }
  const data = wire.subarray(at, at + dataLength);
  if (data.length !== dataLength) throw new PduFormatError('truncated PDU');
  if (dataDigest && dataLength > 0) {
    const padded = wire.subarray(at, at + pad4(dataLength));
    if (wire.readUInt32LE(at + pad4(dataLength)) !== digest(padded)) throw new PduFormatError('data digest error', RejectReason.DATA_DIGEST);
  }
  return {
    opcode: header[0]! & 0x3f,
    immediate: !!(header[0]! & 0x40),
    final: !!(header[1]! & 0x80),
    flags: header[1]!,
    ahsLength,
    dataLength,
    lun: header.subarray(8, 16),
    itt: header.readUInt32BE(16),
    word20: header.readUInt32BE(20),
    cmdSN: header.readUInt32BE(24),
    expStatSN: header.readUInt32BE(28),
    header,
    data,
  };
}

/** Target PDU fields; anything left out is zero. */
export interface TargetPdu {
  opcode: number;
  /** Byte 1. */
  flags: number;
  byte2?: number;
  byte3?: number;
  lun?: Buffer;
  itt: number;
  /** Bytes 20-23 (TTT or SNACK tag). */
  word20?: number;
  statSN?: number;
  expCmdSN: number;
  maxCmdSN: number;
  word36?: number;
  word40?: number;
  word44?: number;
  /** Bytes 8-15 for opcodes that carry something other than a LUN there (login: ISID, TSIH). */
  bytes8?: Buffer;
  /** Login only: status class and detail at 36/37 go through word36. */
  data?: Buffer;
}

/** Encodes a target PDU's header (and digest) and returns the pieces to write: header, data, padding, digest. */
export function encodePdu(p: TargetPdu, headerDigest: boolean, dataDigest: boolean): Buffer[] {
  const dataLength = p.data?.length ?? 0;
  if (dataLength > MAX_DATA_SEGMENT) throw new RangeError('data segment too long');
  const h = Buffer.alloc(BHS_BYTES + (headerDigest ? DIGEST_BYTES : 0));
  h[0] = p.opcode;
  h[1] = p.flags;
  h[2] = p.byte2 ?? 0;
  h[3] = p.byte3 ?? 0;
  h.writeUIntBE(dataLength, 5, 3);
  (p.bytes8 ?? p.lun)?.copy(h, 8, 0, 8);
  h.writeUInt32BE(p.itt >>> 0, 16);
  h.writeUInt32BE((p.word20 ?? 0) >>> 0, 20);
  h.writeUInt32BE((p.statSN ?? 0) >>> 0, 24);
  h.writeUInt32BE(p.expCmdSN >>> 0, 28);
  h.writeUInt32BE(p.maxCmdSN >>> 0, 32);
  h.writeUInt32BE((p.word36 ?? 0) >>> 0, 36);
  h.writeUInt32BE((p.word40 ?? 0) >>> 0, 40);
  h.writeUInt32BE((p.word44 ?? 0) >>> 0, 44);
  if (headerDigest) h.writeUInt32LE(digest(h.subarray(0, BHS_BYTES)), BHS_BYTES);
  const out: Buffer[] = [h];
  if (dataLength > 0) {
    out.push(p.data!);
    const padding = pad4(dataLength) - dataLength;
    const pad = padding ? Buffer.alloc(padding) : undefined;
    if (pad) out.push(pad);
    if (dataDigest) {
      const d = Buffer.alloc(DIGEST_BYTES);
      d.writeUInt32LE(pad ? digest(p.data!, pad) : digest(p.data!), 0);
      out.push(d);
    }
  }
  return out;
}

/** Serial number arithmetic (RFC 1982, 32 bits): is a < b? */
export function snLess(a: number, b: number): boolean {
  return a !== b && ((a < b && b - a < 0x80000000) || (a > b && a - b > 0x80000000));
}

export function snAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** The 8-byte LUN field (SAM-5 single level, peripheral or flat addressing) to a LUN number, or undefined. */
export function lunOf(field: Buffer): number | undefined {
  const method = field[0]! >> 6;
  if (method !== 0 && method !== 1) return undefined;
  if (!field.subarray(2, 8).every((b) => b === 0)) return undefined;
  return ((field[0]! & 0x3f) << 8) | field[1]!;
}

export function lunField(lun: number): Buffer {
  const b = Buffer.alloc(8);
  if (lun < 256) b[1] = lun;
  else { b[0] = 0x40 | (lun >> 8); b[1] = lun & 0xff; }
  return b;
}
