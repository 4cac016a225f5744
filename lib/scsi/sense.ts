/**
 * Sense data decoding (SPC-5 4.4): fixed (70h/71h) and descriptor (72h/73h) formats.
 * The parser is total: truncated or garbage bytes give a best-effort result (or undefined when
 * there is nothing to decode) and never throw, because it runs on every failed command and
 * an exception here would hide the device's real answer.
 */
import { ascText } from './asc-table.js';

export const SenseKey = {
  NO_SENSE: 0x0,
  RECOVERED_ERROR: 0x1,
  NOT_READY: 0x2,
  MEDIUM_ERROR: 0x3,
  HARDWARE_ERROR: 0x4,
  ILLEGAL_REQUEST: 0x5,
  UNIT_ATTENTION: 0x6,
  DATA_PROTECT: 0x7,
  BLANK_CHECK: 0x8,
  VENDOR_SPECIFIC: 0x9,
  COPY_ABORTED: 0xa,
  ABORTED_COMMAND: 0xb,
  RESERVED_C: 0xc,
  VOLUME_OVERFLOW: 0xd,
  MISCOMPARE: 0xe,
  COMPLETED: 0xf,
} as const;

const KEY_NAMES = [
  'NO SENSE', 'RECOVERED ERROR', 'NOT READY', 'MEDIUM ERROR', 'HARDWARE ERROR', 'ILLEGAL REQUEST',
  'UNIT ATTENTION', 'DATA PROTECT', 'BLANK CHECK', 'VENDOR SPECIFIC', 'COPY ABORTED', 'ABORTED COMMAND',
  'RESERVED (0xC)', 'VOLUME OVERFLOW', 'MISCOMPARE', 'COMPLETED',
];

export function senseKeyName(key: number): string {
  return KEY_NAMES[key & 0x0f] ?? `SENSE KEY 0x${key.toString(16)}`;
}

export { ascText };

export interface FieldPointer {
  /** true: the error is in the CDB; false: in the parameter data. */
  commandData: boolean;
  /** Bit pointer valid. */
  bitPointerValid: boolean;
  bitPointer: number;
  /** Byte index of the field in error. */
  field: number;
}

/** COPY ABORTED sense-key-specific data (SPC-5 4.4.2.4.5): where in the EXTENDED COPY parameter data the error is. */
export interface SegmentPointer {
  /** SD: true, the field is relative to the start of the segment descriptor; false, to the start of the parameter list. */
  segmentDescriptor: boolean;
  bitPointerValid: boolean;
  bitPointer: number;
  /** Byte index of the field in error. */
  field: number;
}

export interface SenseDescriptor {
  type: number;
  bytes: Buffer;
}

export interface SenseData {
  responseCode: number;
  /** Descriptor format (72h/73h). */
  descriptorFormat: boolean;
  /** Deferred error (71h/73h): it belongs to an earlier command. */
  deferred: boolean;
  senseKey: number;
  asc: number;
  ascq: number;
  /** The information field, when VALID (fixed) or an information descriptor (descriptor) says so. */
  information?: bigint;
  commandSpecific?: bigint;
  fieldPointer?: FieldPointer;
  /** Progress indication (NO SENSE / NOT READY, e.g. a format in progress), 0..65535 of 65536. */
  progress?: number;
  /** progress as a percentage, 0 ≤ p < 100. */
  progressPercent?: number;
  /** Actual retry count (RECOVERED ERROR, MEDIUM ERROR, HARDWARE ERROR): how many retries the device made. */
  retryCount?: number;
  /** Segment pointer (COPY ABORTED). */
  segmentPointer?: SegmentPointer;
  /** UNIT ATTENTION: the unit attention condition queue overflowed (OVERFLOW bit). */
  unitAttentionOverflow?: boolean;
  filemark: boolean;
  eom: boolean;
  ili: boolean;
  descriptors: SenseDescriptor[];
  /** The sense was shorter than its format needs; fields past the end are absent/zero. */
  truncated: boolean;
  raw: Buffer;
}

type SksFields = Pick<SenseData, 'fieldPointer' | 'progress' | 'progressPercent' | 'retryCount' | 'segmentPointer' | 'unitAttentionOverflow'>;

/**
 * The sense-key-specific field (SPC-5 4.4.2.4): bytes 15-17 of fixed sense, bytes 4-6 of a descriptor of type 02h;
 * what it holds depends on the sense key. In fixed format SKSV (bit 7 of the first byte) says whether it holds
 * anything; in a descriptor SPC says SKSV "shall be set to one", the descriptor being there is what counts
 * (pass descriptor = true), as sg3_utils reads it too.
 */
export function decodeSenseKeySpecific(b: Uint8Array, senseKey: number, descriptor = false): SksFields {
  if (b.length < 3 || (!descriptor && !(b[0]! & 0x80))) return {};
  const b0 = b[0]!;
  const word = (b[1]! << 8) | b[2]!;
  switch (senseKey & 0x0f) {
    case SenseKey.ILLEGAL_REQUEST:
      return { fieldPointer: { commandData: !!(b0 & 0x40), bitPointerValid: !!(b0 & 0x08), bitPointer: b0 & 0x07, field: word } };
    case SenseKey.NO_SENSE:
    case SenseKey.NOT_READY:
      return { progress: word, progressPercent: (word * 100) / 65536 };
    case SenseKey.RECOVERED_ERROR:
    case SenseKey.MEDIUM_ERROR:
    case SenseKey.HARDWARE_ERROR:
      return { retryCount: word };
    case SenseKey.COPY_ABORTED:
      return { segmentPointer: { segmentDescriptor: !!(b0 & 0x20), bitPointerValid: !!(b0 & 0x08), bitPointer: b0 & 0x07, field: word } };
    case SenseKey.UNIT_ATTENTION:
      return { unitAttentionOverflow: !!(b0 & 0x01) };
    default:
      return {};
  }
}

/** Decodes sense bytes; undefined when there is no sense (empty or response code not 70h-73h). */
export function parseSense(input: Uint8Array | undefined | null): SenseData | undefined {
  if (!input || input.length === 0) return undefined;
  const raw = Buffer.from(input);
  const rc = raw[0]! & 0x7f;
  if (rc < 0x70 || rc > 0x73) return undefined;
  const descriptorFormat = rc >= 0x72;
  const base: SenseData = {
    responseCode: rc,
    descriptorFormat,
    deferred: rc === 0x71 || rc === 0x73,
    senseKey: 0, asc: 0, ascq: 0,
    filemark: false, eom: false, ili: false,
    descriptors: [],
    truncated: false,
    raw,
  };
  if (!descriptorFormat) {
    if (raw.length < 3) return { ...base, truncated: true };
    base.senseKey = raw[2]! & 0x0f;
    base.filemark = !!(raw[2]! & 0x80);
    base.eom = !!(raw[2]! & 0x40);
    base.ili = !!(raw[2]! & 0x20);
    if (raw.length >= 7 && (raw[0]! & 0x80)) base.information = BigInt(raw.readUInt32BE(3));
    // Additional sense length says how much follows byte 7; trust the shorter of it and the buffer.
    const declared = raw.length >= 8 ? 8 + raw[7]! : raw.length;
    const end = Math.min(declared, raw.length);
    if (end >= 12) base.commandSpecific = BigInt(raw.readUInt32BE(8));
    if (end >= 13) base.asc = raw[12]!;
    if (end >= 14) base.ascq = raw[13]!;
    if (end >= 18) Object.assign(base, decodeSenseKeySpecific(raw.subarray(15, 18), base.senseKey));
    base.truncated = raw.length < 14 || raw.length < declared;
    return base;
  }
  if (raw.length < 4) return { ...base, senseKey: raw.length > 1 ? raw[1]! & 0x0f : 0, asc: raw[2] ?? 0, truncated: true };
  base.senseKey = raw[1]! & 0x0f;
  base.asc = raw[2]!;
  base.ascq = raw[3]!;
  const declared = raw.length >= 8 ? 8 + raw[7]! : raw.length;
  const end = Math.min(declared, raw.length);
  base.truncated = raw.length < 8 || raw.length < declared;
  let off = 8;
  while (off + 2 <= end) {
    const type = raw[off]!;
    const len = raw[off + 1]!;
    const stop = Math.min(off + 2 + len, end);
    const bytes = raw.subarray(off, stop);
    base.descriptors.push({ type, bytes });
    if (type === 0x00 && bytes.length >= 12) {
      // Information descriptor: VALID in byte 2 bit 7, 8-byte information at 4.
      if (bytes[2]! & 0x80) base.information = bytes.readBigUInt64BE(4);
    } else if (type === 0x01 && bytes.length >= 12) {
      base.commandSpecific = bytes.readBigUInt64BE(4);
    } else if (type === 0x02 && bytes.length >= 7) {
      // Sense key specific descriptor: the 3 bytes at 4-6, laid out as in fixed format.
      Object.assign(base, decodeSenseKeySpecific(bytes.subarray(4, 7), base.senseKey, true));
    } else if (type === 0x04 && bytes.length >= 4) {
      // Stream commands descriptor: FILEMARK/EOM/ILI in byte 3.
      base.filemark = !!(bytes[3]! & 0x80);
      base.eom = !!(bytes[3]! & 0x40);
      base.ili = !!(bytes[3]! & 0x20);
    } else if (type === 0x05 && bytes.length >= 4) {
      base.ili = !!(bytes[3]! & 0x20);
    }
    if (stop < off + 2 + len) { base.truncated = true; break; }
    off = stop;
  }
  return base;
}

/** 'ILLEGAL REQUEST: LOGICAL BLOCK ADDRESS OUT OF RANGE (21/00)' */
export function formatSense(s: SenseData): string {
  const hex = (n: number) => n.toString(16).padStart(2, '0').toUpperCase();
  let text = `${senseKeyName(s.senseKey)}: ${ascText(s.asc, s.ascq)} (${hex(s.asc)}/${hex(s.ascq)})`;
  if (s.deferred) text = `deferred error: ${text}`;
  if (s.information !== undefined) text += ` [information 0x${s.information.toString(16)}]`;
  if (s.fieldPointer) {
    const fp = s.fieldPointer;
    text += ` [${fp.commandData ? 'CDB' : 'parameter data'} byte ${fp.field}${fp.bitPointerValid ? ` bit ${fp.bitPointer}` : ''}]`;
  }
  if (s.progressPercent !== undefined) text += ` [progress ${s.progressPercent.toFixed(1)}%]`;
  if (s.retryCount !== undefined) text += ` [actual retry count ${s.retryCount}]`;
  if (s.segmentPointer) {
    const sp = s.segmentPointer;
    text += ` [${sp.segmentDescriptor ? 'segment descriptor' : 'parameter list'} byte ${sp.field}${sp.bitPointerValid ? ` bit ${sp.bitPointer}` : ''}]`;
  }
  if (s.unitAttentionOverflow) text += ' [unit attention queue overflow]';
  return text;
}

/** Builds fixed-format sense (70h), used by the emulator and by tests. */
export function buildFixedSense(key: number, asc: number, ascq: number, opts: {
  information?: number; fieldPointer?: { commandData: boolean; field: number; bit?: number }; deferred?: boolean;
  /** Progress indication, 0..65535 of 65536 (NO SENSE / NOT READY). */
  progress?: number;
  /** Actual retry count (RECOVERED / MEDIUM / HARDWARE ERROR). */
  retryCount?: number;
  segmentPointer?: { segmentDescriptor: boolean; field: number; bit?: number };
} = {}): Buffer {
  const b = Buffer.alloc(18);
  b[0] = (opts.information !== undefined ? 0x80 : 0) | (opts.deferred ? 0x71 : 0x70);
  b[2] = key & 0x0f;
  if (opts.information !== undefined) b.writeUInt32BE(opts.information >>> 0, 3);
  b[7] = 10;
  b[12] = asc;
  b[13] = ascq;
  if (opts.fieldPointer) {
    const fp = opts.fieldPointer;
    b[15] = 0x80 | (fp.commandData ? 0x40 : 0) | (fp.bit !== undefined ? 0x08 | (fp.bit & 7) : 0);
    b.writeUInt16BE(fp.field & 0xffff, 16);
  } else if (opts.segmentPointer) {
    const sp = opts.segmentPointer;
    b[15] = 0x80 | (sp.segmentDescriptor ? 0x20 : 0) | (sp.bit !== undefined ? 0x08 | (sp.bit & 7) : 0);
    b.writeUInt16BE(sp.field & 0xffff, 16);
  } else if (opts.progress !== undefined || opts.retryCount !== undefined) {
    b[15] = 0x80;
    b.writeUInt16BE((opts.progress ?? opts.retryCount!) & 0xffff, 16);
  }
  return b;
}
