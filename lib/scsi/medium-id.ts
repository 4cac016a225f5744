/**
 * Reading the medium ID — the disc's factory-written, non-rewritable zone (IDk / Mid of the
 * patent) — by the method the quirks table names for the drive, and probing a new drive model
 * for a method that works. Never confused with the drive's unit serial (VPD 80h) except by the
 * explicitly labelled lab stand-in.
 */
import { MocopyError, ExitCode } from '../errors.js';
import * as cdb from './cdb.js';
import type { InquiryInfo, MediumIdResult } from './device-api.js';
import { parseConfiguration, parseMediaSerialNumber, parseSupportedOpcodes, parseSupportedVpdPages, parseUnitSerial, parseVpdPage } from './parse.js';
import type { MediumIdMethod, Quirk } from './quirks.js';
import { DeviceAnswerError, isInvalidField, isInvalidOpcode, ScsiError } from './scsi-errors.js';

/** What medium-ID methods need from a device: send a data-in CDB, get the bytes back. */
export interface DataInRunner {
  readonly spec: string;
  dataIn(cdb: Buffer, alloc: number, opts?: { timeoutMs?: number }): Promise<Buffer>;
}

export class NoMediumIdError extends MocopyError {
  constructor(device: string, detail: string, cause?: unknown) {
    super('E_NO_MEDIUM_ID', `${device}: this drive gives no medium ID by ${detail}`, {
      exitCode: ExitCode.DEVICE,
      hint: `run \`mocopy probe-id ${device}\` to find a method this drive supports, then add a quirk entry (docs/medium-id.md)`,
      ...(cause !== undefined ? { cause } : {}),
    });
  }
}

function cut(buf: Buffer, offset = 0, length?: number): Buffer {
  return Buffer.from(buf.subarray(offset, length === undefined ? undefined : offset + length));
}

export function methodName(m: MediumIdMethod): string {
  switch (m.type) {
    case 'read-media-serial-number': return 'read-media-serial-number';
    case 'vpd': return `vpd:0x${m.page.toString(16)}`;
    case 'read-disc-structure': return `read-disc-structure:0x${m.format.toString(16)}`;
    case 'vendor-cdb': return `vendor-cdb:${m.cdb.replace(/\s/g, '')}`;
    case 'unit-serial-standin': return 'unit-serial-standin (LAB STAND-IN: drive serial, not a medium ID)';
  }
}

/**
 * The longest media serial number accepted. SPC leaves it open; real MO and optical drives report a few
 * dozen bytes. The drive's own claim sizes the second command's buffer, so it is bounded before use.
 */
export const MAX_MEDIA_SERIAL_BYTES = 256;

/** READ MEDIA SERIAL NUMBER: ask 4 bytes for the length, then length+4 (rounded up to 4). */
export async function readMediaSerial(dev: DataInRunner): Promise<Buffer> {
  let head: Buffer;
  try {
    head = await dev.dataIn(cdb.readMediaSerialNumber(4), 4);
  } catch (e) {
    if (isInvalidOpcode(e) || isInvalidField(e)) throw new NoMediumIdError(dev.spec, 'READ MEDIA SERIAL NUMBER', e);
    throw e;
  }
  const { length } = parseMediaSerialNumber(head);
  if (length === 0) throw new NoMediumIdError(dev.spec, 'READ MEDIA SERIAL NUMBER (it answered an empty serial: no medium ID on this disc)');
  if (length > MAX_MEDIA_SERIAL_BYTES) {
    throw new DeviceAnswerError(dev.spec, cdb.readMediaSerialNumber(4), `it claims a ${length}-byte media serial number (at most ${MAX_MEDIA_SERIAL_BYTES} are accepted)`);
  }
  const alloc = (length + 4 + 3) & ~3;
  const full = parseMediaSerialNumber(await dev.dataIn(cdb.readMediaSerialNumber(alloc), alloc));
  if (full.length !== length) throw new DeviceAnswerError(dev.spec, cdb.readMediaSerialNumber(alloc), `it claimed a ${length}-byte serial number, then ${full.length}`);
  if (!full.complete) throw new NoMediumIdError(dev.spec, 'READ MEDIA SERIAL NUMBER (the answer was cut short)');
  return Buffer.from(full.serial);
}

export async function readMediumId(dev: DataInRunner, method: MediumIdMethod): Promise<MediumIdResult> {
  const name = methodName(method);
  switch (method.type) {
    case 'read-media-serial-number':
      return { id: await readMediaSerial(dev), method: name, standIn: false };
    case 'vpd': {
      const page = parseVpdPage(await dev.dataIn(cdb.inquiry({ evpd: true, page: method.page, alloc: 0xfc }), 0xfc), method.page);
      const id = cut(page.body, method.offset ?? 0, method.length);
      if (id.length === 0) throw new NoMediumIdError(dev.spec, `VPD page 0x${method.page.toString(16)} (empty)`);
      return { id, method: name, standIn: false };
    }
    case 'read-disc-structure': {
      const raw = await dev.dataIn(cdb.readDiscStructure({ format: method.format, alloc: 0x1000 }), 0x1000);
      const len = raw.length >= 2 ? raw.readUInt16BE(0) : 0;
      const id = cut(raw.subarray(4, 2 + len), method.offset ?? 0, method.length);
      if (id.length === 0) throw new NoMediumIdError(dev.spec, `READ DISC STRUCTURE format 0x${method.format.toString(16)} (empty)`);
      return { id, method: name, standIn: false };
    }
    case 'vendor-cdb': {
      const raw = await dev.dataIn(Buffer.from(method.cdb.replace(/\s/g, ''), 'hex'), method.alloc);
      const id = cut(raw, method.offset ?? 0, method.length);
      return { id, method: name, standIn: false };
    }
    case 'unit-serial-standin': {
      const serial = parseUnitSerial(await dev.dataIn(cdb.inquiry({ evpd: true, page: 0x80, alloc: 0xfc }), 0xfc));
      if (!serial) throw new NoMediumIdError(dev.spec, 'the unit-serial stand-in (the drive has no unit serial)');
      return { id: Buffer.from(serial, 'latin1'), method: name, standIn: true };
    }
  }
}

export interface ProbeAttempt {
  method: string;
  ok: boolean;
  /** Hex of what the drive answered, or the decoded error. */
  answer: string;
}

export interface ProbeReport {
  device: string;
  inquiry: InquiryInfo;
  attempts: ProbeAttempt[];
  /** A quirk entry ready to paste into a quirks file, when a method worked. */
  quirk?: Quirk;
}

function describe(e: unknown): string {
  return e instanceof ScsiError ? e.senseText : (e as Error).message;
}

/** Tries every known way of reading a medium ID and reports what the drive answered. */
export async function probeMediumId(dev: DataInRunner, inquiry: InquiryInfo): Promise<ProbeReport> {
  const attempts: ProbeAttempt[] = [];
  let working: MediumIdMethod | undefined;
  const attempt = async (label: string, fn: () => Promise<string>, method?: MediumIdMethod) => {
    try {
      const answer = await fn();
      attempts.push({ method: label, ok: true, answer });
      if (method && !working) working = method;
    } catch (e) {
      attempts.push({ method: label, ok: false, answer: describe(e) });
    }
  };
  await attempt('READ MEDIA SERIAL NUMBER (AB/01)', async () => (await readMediaSerial(dev)).toString('hex'), { type: 'read-media-serial-number' });
  await attempt('GET CONFIGURATION feature 0109h (Media Serial Number)', async () => {
    const conf = parseConfiguration(await dev.dataIn(cdb.getConfiguration({ rt: 2, startFeature: 0x0109, alloc: 64 }), 64));
    const f = conf.features.find((x) => x.code === 0x0109);
    if (!f) throw new Error('feature 0109h not reported');
    return `feature 0109h present, current=${f.current}`;
  });
  await attempt('REPORT SUPPORTED OPERATION CODES', async () => {
    const ops = parseSupportedOpcodes(await dev.dataIn(cdb.reportSupportedOperationCodes({ alloc: 8192 }), 8192));
    const rmsn = ops.some((o) => o.opcode === 0xab && o.serviceAction === 0x01);
    const vendor = ops.filter((o) => o.opcode >= 0xc0).map((o) => '0x' + o.opcode.toString(16));
    return `${ops.length} commands; READ MEDIA SERIAL NUMBER ${rmsn ? 'listed' : 'not listed'}; vendor opcodes: ${vendor.join(' ') || 'none'}`;
  });
  let pages: number[] = [];
  await attempt('INQUIRY VPD 00h (supported pages)', async () => {
    pages = parseSupportedVpdPages(await dev.dataIn(cdb.inquiry({ evpd: true, page: 0, alloc: 0xfc }), 0xfc));
    return pages.map((p) => p.toString(16).padStart(2, '0')).join(' ');
  });
  for (const page of pages.filter((p) => p >= 0xc0)) {
    await attempt(`vendor VPD page ${page.toString(16)}h`, async () => {
      const r = await readMediumId(dev, { type: 'vpd', page });
      return r.id.toString('hex');
    }, { type: 'vpd', page });
  }
  const report: ProbeReport = { device: dev.spec, inquiry, attempts };
  if (working) {
    report.quirk = {
      vendor: inquiry.vendor, product: inquiry.product, revision: inquiry.revision, method: working,
      note: `probed by mocopy probe-id on ${new Date().toISOString().slice(0, 10)}; confirm with two different discs that the ID changes with the disc`,
    };
  }
  return report;
}
