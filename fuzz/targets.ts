/**
 * The fuzz targets: one per parser or decoder that reads bytes from outside the station — a drive's answers, a
 * master's ISO volume and catalog, an MO disc's label, license slots and directory, an image header, an encrypted
 * program, the center's request body and MAC header, the station's files, the iSCSI wire.
 *
 * Every input is bytes (so a finding is replayed from its corpus file alone). Where a target needs more than one
 * value, the input says how to split it, and the `about` line says how. Generators start from valid samples made
 * with the project's own encoders (fuzz/mutate.ts damages them) and mix in plain random bytes.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { FormatError, MocopyError, RefusedError, UsageError } from '../lib/errors.js';
import { buildFixedSense, formatSense, parseSense } from '../lib/scsi/sense.js';
import {
  lunNumber, parseBlockLimits, parseConfiguration, parseDeviceIdentification, parseInquiry, parseMediaSerialNumber, parseModeSense10,
  parseModeSense6, parseReadCapacity10, parseReadCapacity16, parseReportLuns, parseSupportedOpcodes, parseSupportedVpdPages, parseToc,
  parseUnitSerial, parseVpdPage,
} from '../lib/scsi/parse.js';
import {
  configurationData, modePages, modeSense10Data, modeSense6Data, readCapacity10Data, readCapacity16Data, sessionInfoData, standardInquiry,
  SUPPORTED_VPD, tocData, vpdPage, type Identity,
} from '../lib/emulator/responses.js';
import { layoutIso, lookupPath, readDirectory, readVolume, SECTOR, type IsoEntry, type ReadSectors } from '../lib/formats/iso9660.js';
import { CATALOG_FORMAT, decodeCatalog, MAX_CATALOG_BYTES } from '../lib/formats/catalog.js';
import {
  chooseDirectory, DATA_OFFSET, decodeDirectory, decodeLabel, decodeLicenseRecord, encodeDirectory, encodeLabel, encodeLicenseRecord,
  EXTENT_ALIGN, freeSlot, LABEL_BYTES, nextExtentOffset, SLOT_BYTES, validateDirectory, type DirectoryEntry,
} from '../lib/formats/disc-layout.js';
import { decodeMoHeader, encodeMoHeader, MO_HEADER_SIZE } from '../lib/emulator/mo-image.js';
import {
  createStreamHeader, decryptStream, encryptChunk, chunkCount, HEADER_SECTOR, parseStreamHeader, PLAIN_CHUNK, Purpose, streamIdFor,
} from '../lib/crypto/stream-aead.js';
import { IntegrityError } from '../lib/crypto/errors.js';
import { validateLicenseRequest } from '../lib/center/center.js';
import { macMatches, requestMac, responseMac } from '../lib/center/http-auth.js';
import { readStationKey, StationKeyError } from '../lib/center/station-key.js';
import { readConfigFile } from '../lib/config.js';
import { BUILTIN_QUIRKS, findQuirk, loadQuirks } from '../lib/scsi/quirks.js';
import { readMediumId, type DataInRunner } from '../lib/scsi/medium-id.js';
import { BHS_BYTES, decodePdu, digest, pad4, PduFormatError, wireLength } from '../lib/iscsi/pdu.js';
import { applyAgreed, DEFAULT_PARAMETERS, decodeText, encodeText, negotiate, targetTable, type KeyValues } from '../lib/iscsi/text.js';
import { LoginExchange, loginRequestOf, LoginStatus } from '../lib/iscsi/login.js';
import { chapResponse, decodeBinary, encodeBinary } from '../lib/iscsi/chap.js';
import { invariant, tolerate, tolerateSync, violation, type FuzzTarget } from './harness.js';
import { buf, bytesInput, jsonInput, mutated, opArb, applyOps, type Field, type Json, type Sample } from './mutate.js';

const F = [FormatError] as const;
const u8 = fc.nat(255);
const u16 = fc.nat(0xffff);
const u32 = fc.nat(0xffffffff);
const bytes = (max: number, min = 0) => fc.uint8Array({ minLength: min, maxLength: max }).map(buf);
const hex = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((a) => Buffer.from(a).toString('hex'));
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();
const f1 = (at: number): Field => ({ at, size: 1 });
const be = (at: number, size: Field['size']): Field => ({ at, size });

/** A pool of samples made once (when they are costly to build) and then picked from. */
function pool<T>(make: () => T[]): () => fc.Arbitrary<T> {
  let made: T[] | undefined;
  return () => fc.constantFrom(...(made ??= make()));
}

// ============================================================================================== SCSI sense

const FIXED_SENSE_FIELDS = [f1(0), f1(2), be(3, 4), f1(7), be(8, 4), f1(12), f1(13), f1(15), be(16, 2)];

const fixedSense: fc.Arbitrary<Sample> = fc.record({
  key: fc.nat(15), asc: u8, ascq: u8, deferred: fc.boolean(),
  information: fc.option(u32, { nil: undefined }),
  fp: fc.option(fc.record({ commandData: fc.boolean(), field: u16, bit: fc.option(fc.nat(7), { nil: undefined }) }), { nil: undefined }),
}).map((o) => ({ bytes: buildFixedSense(o.key, o.asc, o.ascq, { information: o.information, fieldPointer: o.fp, deferred: o.deferred }), fields: FIXED_SENSE_FIELDS }));

const descriptorSense: fc.Arbitrary<Sample> = fc.record({
  deferred: fc.boolean(), key: fc.nat(15), asc: u8, ascq: u8,
  descs: fc.array(fc.record({ type: fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 0x80), u8), body: bytes(24) }), { maxLength: 5 }),
}).map((o) => {
  const fields: Field[] = [f1(0), f1(1), f1(2), f1(7)];
  let at = 8;
  const parts = o.descs.map((d) => {
    // Information and command-specific descriptors (types 0, 1) are 10 bytes after the header: VALID, reserved, 8 bytes.
    const body = d.type === 0 || d.type === 1 ? Buffer.concat([Buffer.from([0x80, 0]), d.body, Buffer.alloc(10)]).subarray(0, 10) : d.body;
    fields.push(f1(at), f1(at + 1), f1(at + 2), f1(at + 4), be(at + 4, 8));
    at += 2 + body.length;
    return Buffer.concat([Buffer.from([d.type, body.length]), body]);
  });
  const body = Buffer.concat(parts);
  const head = Buffer.from([o.deferred ? 0x73 : 0x72, o.key, o.asc, o.ascq, 0, 0, 0, Math.min(255, body.length)]);
  return { bytes: Buffer.concat([head, body]), fields };
});

// ============================================================================================== SCSI responses

const identity: fc.Arbitrary<Identity> = fc.record({
  kind: fc.constantFrom('mo' as const, 'cd' as const),
  vendor: fc.string({ maxLength: 10 }), product: fc.string({ maxLength: 18 }), revision: fc.string({ maxLength: 5 }),
  serial: fc.string({ maxLength: 40 }), maxTransferBlocks: u32,
});

const designatorPage: fc.Arbitrary<Sample> = fc.array(
  fc.record({ codeSet: fc.nat(15), assoc: fc.nat(3), type: fc.nat(15), value: bytes(40) }), { maxLength: 6 },
).map((ds) => {
  const fields: Field[] = [f1(1), be(2, 2)];
  let at = 4;
  const body = Buffer.concat(ds.map((d) => {
    fields.push(f1(at), f1(at + 3));
    at += 4 + d.value.length;
    return Buffer.concat([Buffer.from([d.codeSet, (d.assoc << 4) | d.type, 0, d.value.length]), d.value]);
  }));
  const h = Buffer.from([0x07, 0x83, 0, 0]);
  h.writeUInt16BE(body.length, 2);
  return { bytes: Buffer.concat([h, body]), fields };
});

const vpdSample: fc.Arbitrary<Sample> = fc.oneof(
  fc.tuple(identity, fc.constantFrom(...SUPPORTED_VPD)).map(([id, p]) => ({ bytes: vpdPage(id, p)!, fields: [f1(0), f1(1), be(2, 2), be(8, 4), be(12, 4)] })),
  designatorPage,
);

function modePagesSample(): fc.Arbitrary<Buffer> {
  return fc.oneof(
    fc.constantFrom(0x3f, 0x08, 0x0a).map((p) => modePages(p)!),
    fc.constant(Buffer.alloc(0)),
    // A subpage-format page (SPF): code | 0x40, subpage, BE16 length.
    fc.tuple(fc.nat(0x3f), u8, bytes(24)).map(([code, sub, body]) => {
      const h = Buffer.from([0x40 | code, sub, 0, 0]);
      h.writeUInt16BE(body.length, 2);
      return Buffer.concat([h, body]);
    }),
  );
}

function pageFields(base: number, pages: Buffer): Field[] {
  const out: Field[] = [];
  for (let at = 0; at + 2 <= pages.length && out.length < 12;) {
    out.push(f1(base + at), f1(base + at + 1), be(base + at + 2, 2));
    const len = pages[at]! & 0x40 ? 4 + pages.readUInt16BE(at + 2) : 2 + pages[at + 1]!;
    at += len;
  }
  return out;
}

const blockCount = fc.oneof(fc.integer({ min: 1, max: 0xffffffff }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }));
const blockSize = fc.oneof(fc.constantFrom(512, 2048), fc.integer({ min: 0, max: 0xffffff }));

const modeSense6Sample: fc.Arbitrary<Sample> = fc.tuple(fc.boolean(), blockCount, blockSize, fc.boolean(), modePagesSample()).map(([wp, n, size, dbd, pages]) => {
  const b = modeSense6Data(wp, n, size, dbd, pages);
  return { bytes: b, fields: [f1(0), f1(1), f1(2), f1(3), ...pageFields(4 + b[3]!, pages)] };
});

const modeSense10Sample: fc.Arbitrary<Sample> = fc.oneof(
  fc.tuple(fc.boolean(), blockCount, blockSize, fc.boolean(), modePagesSample()).map(([wp, n, size, dbd, pages]) => {
    const b = modeSense10Data(wp, n, size, dbd, pages);
    return { bytes: b, fields: [be(0, 2), f1(2), f1(3), f1(4), be(6, 2), ...pageFields(8 + b.readUInt16BE(6), pages)] };
  }),
  // LONGLBA: 16-byte block descriptors.
  fc.tuple(fc.array(fc.tuple(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), u32), { maxLength: 3 }), modePagesSample()).map(([bds, pages]) => {
    const bd = Buffer.concat(bds.map(([n, len]) => { const d = Buffer.alloc(16); d.writeBigUInt64BE(n, 0); d.writeUInt32BE(len, 12); return d; }));
    const h = Buffer.alloc(8);
    h.writeUInt16BE(6 + bd.length + pages.length, 0);
    h[4] = 0x01;
    h.writeUInt16BE(bd.length, 6);
    return { bytes: Buffer.concat([h, bd, pages]), fields: [be(0, 2), f1(4), be(6, 2), ...pageFields(8 + bd.length, pages)] };
  }),
);

const tocSample: fc.Arbitrary<Sample> = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 0x7fffffff }), fc.constantFrom(0, 1, 0xaa)).map(([n, start]) => {
    const b = tocData(n, false, start)!;
    const fields: Field[] = [be(0, 2), f1(2), f1(3)];
    for (let at = 4; at + 8 <= b.length; at += 8) fields.push(f1(at + 1), f1(at + 2), be(at + 4, 4));
    return { bytes: b, fields };
  }),
  fc.constant({ bytes: sessionInfoData(false), fields: [be(0, 2)] }),
);

const configSample: fc.Arbitrary<Sample> = fc.tuple(fc.constantFrom('mo' as const, 'cd' as const), fc.boolean(), fc.constantFrom(0, 1, 2), fc.oneof(fc.constantFrom(0, 1, 0x109), u16))
  .map(([kind, present, rt, start]) => {
    const b = configurationData(kind, present, rt, start);
    const fields: Field[] = [be(0, 4), be(6, 2)];
    for (let at = 8; at + 4 <= b.length; at += 4 + b[at + 3]!) fields.push(be(at, 2), f1(at + 2), f1(at + 3));
    return { bytes: b, fields };
  });

const lunsSample: fc.Arbitrary<Sample> = fc.array(bytes(8, 8), { maxLength: 6 }).map((luns) => {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(luns.length * 8, 0);
  return { bytes: Buffer.concat([h, ...luns]), fields: [be(0, 4), ...luns.map((_, i) => f1(8 + 8 * i))] };
});

const opcodesSample: fc.Arbitrary<Sample> = fc.array(fc.record({ op: u8, sa: u16, servActv: fc.boolean(), ctdp: fc.boolean(), cdbLen: u16 }), { maxLength: 6 }).map((ds) => {
  const fields: Field[] = [be(0, 4)];
  let at = 4;
  const body = Buffer.concat(ds.map((d) => {
    const b = Buffer.alloc(d.ctdp ? 20 : 8);
    b[0] = d.op;
    b.writeUInt16BE(d.sa, 2);
    b[5] = (d.servActv ? 1 : 0) | (d.ctdp ? 2 : 0);
    b.writeUInt16BE(d.cdbLen, 6);
    if (d.ctdp) b.writeUInt16BE(10, 8);
    fields.push(f1(at + 5), be(at + 6, 2));
    at += b.length;
    return b;
  }));
  const h = Buffer.alloc(4);
  h.writeUInt32BE(body.length, 0);
  return { bytes: Buffer.concat([h, body]), fields };
});

const serialSample: fc.Arbitrary<Sample> = bytes(80).map((s) => {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(s.length, 0);
  return { bytes: Buffer.concat([h, s]), fields: [be(0, 4)] };
});

function responseTarget(name: string, about: string, samples: fc.Arbitrary<Sample>, run: (b: Buffer) => unknown): FuzzTarget {
  return { name, about, allowed: F, input: () => bytesInput(samples, { maxLen: 4096, randomMax: 96 }), run };
}

// ============================================================================================== ISO 9660

const ISO_DATE = new Date(Date.UTC(2026, 0, 1));
const isoName = fc.stringMatching(/^[A-Z0-9_]{1,8}$/);
const isoFile = fc.tuple(isoName, fc.stringMatching(/^[A-Z0-9_]{0,3}$/)).map(([a, b]) => `${a}.${b}`);

interface IsoSpec { files: Array<{ path: string; size: number }>; volumeId: string }

const isoSpec: fc.Arbitrary<IsoSpec> = fc.record({
  catalog: fc.boolean(),
  programs: fc.nat(3),
  extra: fc.array(fc.record({ dir: fc.constantFrom('', '/DATA', '/DATA/SUB', '/X', '/A/B/C/D/E/F/G'), name: isoFile, size: fc.nat(300_000) }), { maxLength: 5 }),
  volumeId: fc.constantFrom('MASTER', 'WORDPRO', ''),
}).map((o) => {
  const files = new Map<string, number>();
  if (o.catalog) files.set('/MOCOPY.CAT', 900);
  for (let i = 1; i <= o.programs; i++) files.set(`/PROGRAMS/P000${i}.ENC`, 70_000 * i);
  for (const e of o.extra) files.set(`${e.dir}/${e.name}`, e.size);
  return { files: [...files].map(([path, size]) => ({ path, size })), volumeId: o.volumeId };
});

/**
 * An ISO 9660 fuzz input: BE32 medium size in sectors, then the volume from sector 16 on (the system area is
 * implied zero; sectors past the stored ones read as zero up to the medium size), cut after the last metadata
 * sector — the reader never reads file data.
 */
function buildIso(spec: IsoSpec, edit?: (img: Buffer, at: (lba: number) => number) => void): Sample {
  const layout = layoutIso(spec.files, { volumeId: spec.volumeId, date: ISO_DATE });
  const end = Math.max(...layout.metadata.map((m) => m.lba)) + 1;
  const img = Buffer.alloc(4 + (end - 16) * SECTOR);
  img.writeUInt32BE(layout.totalSectors, 0);
  const at = (lba: number) => 4 + (lba - 16) * SECTOR;
  for (const m of layout.metadata) m.bytes.copy(img, at(m.lba));
  const pvd = at(16);
  const both4 = (o: number): Field => ({ at: pvd + o, size: 4, both: true });
  const fields: Field[] = [be(0, 4), both4(80), { at: pvd + 128, size: 2, both: true }, both4(132), { at: pvd + 140, size: 4, le: true }, be(pvd + 148, 4),
    f1(pvd + 156), both4(158), both4(166), f1(pvd + 181), f1(pvd + 188)];
  const ptSectors = Math.ceil(img.readUInt32LE(pvd + 132) / SECTOR);
  const tables = [img.readUInt32LE(pvd + 140), img.readUInt32BE(pvd + 148)];
  const dirLbas = layout.metadata.map((m) => m.lba).filter((lba) => lba > 17 && !tables.some((t) => lba >= t && lba < t + ptSectors));
  edit?.(img, at);
  for (const lba of dirLbas) {
    const base = at(lba);
    for (let off = 0; off < SECTOR && img[base + off]! > 0 && fields.length < 200; off += img[base + off]!) {
      const r = base + off;
      fields.push(f1(r), { at: r + 2, size: 4, both: true }, { at: r + 10, size: 4, both: true }, f1(r + 25), f1(r + 32));
    }
  }
  return { bytes: img, fields };
}

/** Finds the directory record named `name` in the sector at `base`. */
function findRecord(img: Buffer, base: number, name: string): number {
  for (let off = 0; off < SECTOR && img[base + off]! > 0; off += img[base + off]!) {
    if (img.toString('latin1', base + off + 33, base + off + 33 + img[base + off + 32]!) === name) return base + off;
  }
  throw new Error(`no record ${name}`);
}

const isoPool = pool<Sample>(() => [
  ...fc.sample(isoSpec.map((s) => buildIso(s)), { seed: 9660, numRuns: 40 }),
  // A directory of 40 files (two sectors of records).
  buildIso({ volumeId: 'MANY', files: Array.from({ length: 40 }, (_, i) => ({ path: `/PROGRAMS/P${String(i).padStart(4, '0')}.ENC`, size: 100 })) }),
  // A multi-extent file: BIG.BIN in two extents (the first record flagged 0x80).
  buildIso({ volumeId: 'MULTI', files: [{ path: '/BIG.BIN', size: 5000 }, { path: '/Z.TXT', size: 1 }] }, (img, at) => {
    const root = at(img.readUInt32LE(at(16) + 158));
    const r = findRecord(img, root, 'BIG.BIN;1');
    const len = img[r]!;
    const rec = Buffer.from(img.subarray(r, r + len));
    img.copy(img, r + len, r, root + SECTOR - len);
    img[r + 25] = img[r + 25]! | 0x80;
    img.writeUInt32LE(2048, r + 10);
    img.writeUInt32BE(2048, r + 14);
    rec.writeUInt32LE(rec.readUInt32LE(2) + 1, 2);
    rec.writeUInt32BE(rec.readUInt32LE(2), 6);
    rec.writeUInt32LE(5000 - 2048, 10);
    rec.writeUInt32BE(5000 - 2048, 14);
    rec.copy(img, r + len);
  }),
]);

const ZERO_SECTORS = Buffer.alloc(16 * SECTOR);

function isoReader(input: Buffer): { read: ReadSectors; medium: number } {
  const img = input.subarray(4);
  const stored = 16 + Math.ceil(img.length / SECTOR);
  const medium = Math.max(stored, input.readUInt32BE(0));
  const read: ReadSectors = async (lba, count) => {
    if (!Number.isSafeInteger(lba) || !Number.isSafeInteger(count) || lba < 0 || count < 1) violation('read', `read(${lba}, ${count})`);
    if (count > 16) violation('read', `one read of ${count} sectors (the reader reads a directory 16 sectors at a time)`);
    if (lba + count > medium) violation('read', `read of sectors ${lba}..${lba + count - 1} past the end of a ${medium}-sector medium`);
    const n = Math.max(0, Math.min(count, 16));
    const from = (lba - 16) * SECTOR;
    const to = from + n * SECTOR;
    if (to <= 0 || from >= img.length) return ZERO_SECTORS.subarray(0, n * SECTOR);
    if (from >= 0 && to <= img.length) return img.subarray(from, to);
    const out = Buffer.alloc(n * SECTOR);
    img.copy(out, Math.max(0, -from), Math.max(0, from), Math.min(img.length, to));
    return out;
  };
  return { read, medium };
}

// ============================================================================================== disc layout, catalog

const contentId = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$/);
const isoDate = fc.integer({ min: 0, max: 4e12 }).map((t) => new Date(t).toISOString());

function sealAt(total: number, magic: string, lenAt: number, bodyAt: number, body: Buffer, lenSize: 2 | 4): Buffer {
  const b = Buffer.alloc(total);
  b.write(magic, 0, 'latin1');
  if (lenSize === 2) b.writeUInt16BE(Math.min(body.length, 0xffff), lenAt);
  else b.writeUInt32BE(body.length, lenAt);
  body.copy(b, bodyAt, 0, Math.min(body.length, total - bodyAt - 32));
  return sealTail(b, total);
}

/** Label and license slot: SHA-256 of bytes 0..total-32 in the last 32 bytes. */
function sealTail(b: Buffer, total: number): Buffer {
  if (b.length < total) return b;
  const x = Buffer.from(b);
  sha256(x.subarray(0, total - 32)).copy(x, total - 32);
  return x;
}

const labelJson: fc.Arbitrary<Json> = fc.record({ version: fc.constant(1), blockSize: fc.constantFrom(512, 2048), created: isoDate, slots: fc.constant(64), dataOffset: fc.constant(DATA_OFFSET) });

const recordJson: fc.Arbitrary<Json> = fc.oneof(
  fc.record({ v: fc.constant(1), scheme: fc.constant('a'), contentId, centerId: fc.string({ minLength: 1, maxLength: 20 }), licenseId: fc.string({ minLength: 1, maxLength: 40 }), cs: hex(16), ekuKeyc: hex(40), ekuKd: hex(40) }),
  fc.record({ v: fc.constant(1), scheme: fc.constant('b'), contentId, centerId: fc.string({ minLength: 1, maxLength: 20 }), licenseId: fc.string({ minLength: 1, maxLength: 40 }), emidKu: hex(40) }),
);

const dirEntry: fc.Arbitrary<DirectoryEntry> = fc.record({
  contentId, name: fc.string({ maxLength: 30 }), scheme: fc.constantFrom('a' as const, 'b' as const), slot: fc.nat(63),
  offset: fc.nat(10_000).map((k) => DATA_OFFSET + k * EXTENT_ALIGN), encryptedSize: fc.integer({ min: 2065, max: 50_000_000 }),
  plainSize: fc.nat(2048), sha256: hex(32), committed: isoDate,
});
const directoryJson: fc.Arbitrary<{ generation: number; entries: DirectoryEntry[] }> = fc.record({
  generation: fc.integer({ min: 1, max: 2 ** 40 }),
  entries: fc.uniqueArray(dirEntry, { minLength: 1, maxLength: 5, selector: (e) => e.contentId }),
});

/** A directory copy cut after its checksum (decodeDirectory needs no more), the length field made to fit, re-sealed. */
function sealDirectory(b: Buffer): Buffer {
  if (b.length < 52) return b;
  const x = Buffer.from(b);
  let len = x.readUInt32BE(16);
  if (20 + len + 32 > x.length) {
    len = x.length - 52;
    x.writeUInt32BE(len, 16);
  }
  sha256(x.subarray(0, 20 + len)).copy(x, 20 + len);
  return x;
}

function directoryBytes(generation: bigint, body: Buffer): Buffer {
  const b = Buffer.alloc(20 + body.length + 32);
  b.write('MOCOPYDR', 0, 'latin1');
  b.writeBigUInt64BE(generation, 8);
  b.writeUInt32BE(body.length, 16);
  body.copy(b, 20);
  return sealDirectory(b);
}

const catalogJson: fc.Arbitrary<Json> = fc.record({
  format: fc.constant(CATALOG_FORMAT), version: fc.constant(1), title: fc.string({ maxLength: 40 }), created: isoDate,
  contents: fc.uniqueArray(fc.record({
    contentId, name: fc.string({ maxLength: 30 }), size: fc.nat(1e9), extra: fc.integer({ min: 1, max: 1e6 }),
    schemes: fc.subarray(['a', 'b'], { minLength: 1 }), sha256: hex(32), path: fc.nat(9999).map((n) => `/PROGRAMS/P${String(n).padStart(4, '0')}.ENC`),
  }).map(({ extra, ...e }) => ({ ...e, encryptedSize: e.size + extra })), { minLength: 1, maxLength: 5, selector: (e) => e.contentId }),
});

// ============================================================================================== stream AEAD

const STREAM_KEY = Buffer.alloc(32, 0x5a);
const STREAM_ID = streamIdFor('WORDPRO-1');

/** Header sector then chunks, as encryptStream writes them (encryptChunk is its per-chunk step). */
function encryptedProgram(plainLength: number, purpose: number, id: Buffer): Buffer {
  const h = createStreamHeader({ purpose, plainLength, streamId: id, noncePrefix: Buffer.from('fuzzfix') });
  const sector = Buffer.alloc(HEADER_SECTOR);
  h.bytes.copy(sector);
  const plain = Buffer.alloc(plainLength, 0x33);
  const chunks = Array.from({ length: chunkCount(plainLength) }, (_, i) => encryptChunk(STREAM_KEY, h, i, plain.subarray(i * PLAIN_CHUNK, (i + 1) * PLAIN_CHUNK)));
  return Buffer.concat([sector, ...chunks]);
}

const streamPool = pool<Buffer>(() => [
  ...[0, 1, 15, 16, 17, 1000, PLAIN_CHUNK - 1, PLAIN_CHUNK, PLAIN_CHUNK + 1].map((n) => encryptedProgram(n, Purpose.MASTER, STREAM_ID)),
  encryptedProgram(2 * PLAIN_CHUNK, Purpose.DISC_COPY, STREAM_ID),
  encryptedProgram(333, Purpose.DISC_COPY, streamIdFor('OTHER')),
]);

type ChunkOp = { k: 'drop' | 'dup' | 'swap' | 'cut'; i: number; d: number };
const chunkOpArb: fc.Arbitrary<ChunkOp> = fc.record({ k: fc.constantFrom('drop', 'dup', 'swap', 'cut'), i: fc.nat(3), d: fc.integer({ min: -20, max: 20 }) });

/** Whole-chunk damage: drop, duplicate or swap chunks, cut near a chunk boundary. */
function chunkOps(s: Buffer, ops: readonly ChunkOp[]): Buffer {
  const C = 65536;
  let chunks: Buffer[] = [];
  for (let at = HEADER_SECTOR; at < s.length; at += C) chunks.push(s.subarray(at, Math.min(s.length, at + C)));
  let cut: number | undefined;
  for (const op of ops) {
    const i = chunks.length ? op.i % chunks.length : 0;
    if (op.k === 'drop' && chunks.length) chunks.splice(i, 1);
    else if (op.k === 'dup' && chunks.length) chunks.splice(i, 0, chunks[i]!);
    else if (op.k === 'swap' && chunks.length > 1) [chunks[0], chunks[i]] = [chunks[i]!, chunks[0]!];
    else if (op.k === 'cut') cut = HEADER_SECTOR + i * C + op.d;
  }
  const out = Buffer.concat([s.subarray(0, HEADER_SECTOR), ...chunks]);
  return cut !== undefined && cut >= 0 ? out.subarray(0, Math.min(out.length, cut)) : out;
}

const STREAM_HEADER_FIELDS = [f1(8), f1(9), be(10, 2), be(12, 4), be(16, 8), be(24, 4), f1(31), f1(32), f1(100), f1(2047)];

/** How the stream-decrypt input's bytes are handed over (mode & 7). */
async function* pieces(data: Buffer, how: number): AsyncGenerator<Uint8Array> {
  const sized = function* (size: (i: number) => number): Generator<Buffer> {
    for (let at = 0, i = 0; at < data.length; i++) {
      const n = Math.max(1, size(i));
      yield data.subarray(at, at + n);
      at += n;
    }
  };
  switch (how) {
    case 0: yield data; return;
    case 1: for (let i = 0; i < Math.min(4096, data.length); i++) yield data.subarray(i, i + 1); if (data.length > 4096) yield data.subarray(4096); return;
    case 2: yield* sized(() => 2047); return;
    case 3: yield* sized(() => 65536); return;
    case 4: yield* sized(() => 65535); return;
    case 5: { let x = data.length | 1; yield* sized(() => { x = (x * 1103515245 + 12345) & 0x7fffffff; return 1 + (x % 9000); }); return; }
    case 6: for (const p of sized(() => 1000)) { yield new Uint8Array(0); yield p; } return;
    default: {
      // Uint8Array views at an offset into a larger ArrayBuffer (not Buffers).
      const ab = new ArrayBuffer(data.length + 16);
      new Uint8Array(ab, 16).set(data);
      for (let at = 0; at < data.length; at += 3000) yield new Uint8Array(ab, 16 + at, Math.min(3000, data.length - at));
    }
  }
}

// ============================================================================================== iSCSI

const IQN = 'iqn.2026-11.org.example:mo';
const INITIATOR = 'iqn.1994-05.com.example:host';
const CHAP_SECRET = Buffer.from('twelve-chars-or-more');

interface RawPdu { opcode: number; immediate?: boolean; flags: number; byte2?: number; byte3?: number; ahs?: Buffer; bytes8?: Buffer; itt?: number; word20?: number; word24?: number; word28?: number; data: Buffer }

/** An initiator PDU's wire bytes, digests included when asked. */
function rawPdu(p: RawPdu, hd: boolean, dd: boolean): Buffer {
  const ahs = p.ahs ?? Buffer.alloc(0);
  const h = Buffer.alloc(BHS_BYTES);
  h[0] = (p.immediate ? 0x40 : 0) | (p.opcode & 0x3f);
  h[1] = p.flags;
  h[2] = p.byte2 ?? 0;
  h[3] = p.byte3 ?? 0;
  h[4] = ahs.length / 4;
  h.writeUIntBE(p.data.length, 5, 3);
  p.bytes8?.copy(h, 8, 0, 8);
  h.writeUInt32BE((p.itt ?? 1) >>> 0, 16);
  h.writeUInt32BE((p.word20 ?? 0) >>> 0, 20);
  h.writeUInt32BE((p.word24 ?? 0) >>> 0, 24);
  h.writeUInt32BE((p.word28 ?? 0) >>> 0, 28);
  const head = Buffer.concat([h, ahs]);
  const parts = [head];
  if (hd) { const d = Buffer.alloc(4); d.writeUInt32LE(digest(head), 0); parts.push(d); }
  const padded = Buffer.concat([p.data, Buffer.alloc(pad4(p.data.length) - p.data.length)]);
  parts.push(padded);
  if (dd && p.data.length > 0) { const d = Buffer.alloc(4); d.writeUInt32LE(digest(padded), 0); parts.push(d); }
  return Buffer.concat(parts);
}

const textValue = fc.oneof(
  fc.constantFrom('Yes', 'No', 'None', 'CRC32C', 'CRC32C,None', 'None,CRC32C', '0', '1', '512', '8192', '65536', '262144', '16777215', '16777216', '0x10', '0xffffff',
    '4294967296', '-1', '01', 'Irrelevant', 'Reject', 'NotUnderstood', '', 'Normal', 'Discovery', IQN, INITIATOR),
  fc.string({ maxLength: 20 }),
  fc.nat().map(String),
);
const textKey = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...Object.keys(targetTable({ maxRecvDataSegmentLength: 8192, maxBurstLength: 1 << 20, firstBurstLength: 65536, maxOutstandingR2T: 1, digests: true }))) },
  { weight: 1, arbitrary: fc.constantFrom('AuthMethod', 'CHAP_A', 'CHAP_N', 'CHAP_R', 'X-com.example.private', '__proto__', 'constructor', 'toString', 'TargetAlias', 'SendTargets') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);
const keyValues: fc.Arbitrary<KeyValues> = fc.array(fc.tuple(textKey, textValue), { maxLength: 10 });

const loginKeys: fc.Arbitrary<KeyValues> = fc.array(fc.oneof(
  fc.constantFrom<[string, string]>(['InitiatorName', INITIATOR], ['TargetName', IQN], ['TargetName', 'iqn.other'], ['SessionType', 'Normal'], ['SessionType', 'Discovery'],
    ['SessionType', 'Bogus'], ['AuthMethod', 'None'], ['AuthMethod', 'CHAP'], ['AuthMethod', 'CHAP,None'], ['AuthMethod', 'SRP'], ['CHAP_A', '5'], ['CHAP_A', '7,5'],
    ['CHAP_A', '7'], ['CHAP_N', 'user'], ['CHAP_N', 'other'], ['CHAP_R', 'auto'], ['CHAP_R', '0x00'], ['CHAP_R', '0bAAAA'], ['CHAP_R', '0x'], ['CHAP_I', '1'],
    ['CHAP_C', '0x0102'], ['InitiatorAlias', 'host'], ['HeaderDigest', 'CRC32C,None'], ['DataDigest', 'None'], ['MaxRecvDataSegmentLength', '65536'],
    ['MaxBurstLength', '262144'], ['FirstBurstLength', '65536'], ['ImmediateData', 'Yes'], ['InitialR2T', 'No'], ['ErrorRecoveryLevel', '0']),
  fc.tuple(textKey, textValue),
), { maxLength: 8 });

interface LoginStep { csg: number; nsg: number; transit: boolean; cont: boolean; versionMin: number; keys: KeyValues }

function loginPdu(s: LoginStep, i: number): Buffer {
  const bytes8 = Buffer.from([0x80, 0, 0, 0, 0, 1, 0, 0]);
  return rawPdu({
    opcode: 0x03, immediate: true, flags: (s.transit ? 0x80 : 0) | (s.cont ? 0x40 : 0) | ((s.csg & 3) << 2) | (s.nsg & 3), byte3: s.versionMin,
    bytes8, itt: i + 1, word24: 1, data: encodeText(s.keys),
  }, false, false);
}

const names: KeyValues = [['InitiatorName', INITIATOR], ['TargetName', IQN], ['SessionType', 'Normal']];
const OPERATIONAL: KeyValues = [['HeaderDigest', 'None'], ['DataDigest', 'None'], ['MaxRecvDataSegmentLength', '65536'], ['MaxBurstLength', '262144'], ['FirstBurstLength', '65536']];
const GOLDEN_LOGINS: Array<{ chap: boolean; steps: LoginStep[] }> = [
  { chap: false, steps: [{ csg: 0, nsg: 1, transit: true, cont: false, versionMin: 0, keys: [...names, ['AuthMethod', 'None']] }, { csg: 1, nsg: 3, transit: true, cont: false, versionMin: 0, keys: OPERATIONAL }] },
  { chap: false, steps: [{ csg: 1, nsg: 3, transit: true, cont: false, versionMin: 0, keys: [...names, ...OPERATIONAL] }] },
  { chap: false, steps: [{ csg: 0, nsg: 3, transit: true, cont: false, versionMin: 0, keys: [['InitiatorName', INITIATOR], ['SessionType', 'Discovery'], ['AuthMethod', 'None']] }] },
  { chap: true, steps: [
    { csg: 0, nsg: 1, transit: false, cont: false, versionMin: 0, keys: [...names, ['AuthMethod', 'CHAP,None']] },
    { csg: 0, nsg: 1, transit: false, cont: false, versionMin: 0, keys: [['CHAP_A', '5']] },
    { csg: 0, nsg: 1, transit: true, cont: false, versionMin: 0, keys: [['CHAP_N', 'user'], ['CHAP_R', 'auto']] },
    { csg: 1, nsg: 3, transit: true, cont: false, versionMin: 0, keys: OPERATIONAL },
  ] },
];

const loginStep: fc.Arbitrary<LoginStep> = fc.record({
  csg: fc.oneof(fc.constantFrom(0, 1), fc.nat(3)), nsg: fc.oneof(fc.constantFrom(1, 3), fc.nat(3)), transit: fc.boolean(), cont: fc.boolean(),
  versionMin: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: u8 }), keys: loginKeys,
});

function loginInput(chap: boolean, digests: boolean, steps: readonly LoginStep[]): Buffer {
  return Buffer.concat([Buffer.from([(chap ? 1 : 0) | (digests ? 2 : 0)]), ...steps.map(loginPdu)]);
}

/** Recomputes the digests a damaged iscsi-pdu input claims (mode byte + wire), so the damage gets past them. */
function resealPdu(input: Buffer): Buffer {
  if (input.length < 1 + BHS_BYTES) return input;
  const x = Buffer.from(input);
  const hd = !!(x[0]! & 1);
  const dd = !!(x[0]! & 2);
  const wire = x.subarray(1);
  let at = BHS_BYTES + wire[4]! * 4;
  if (hd) {
    if (wire.length < at + 4) return x;
    wire.writeUInt32LE(digest(wire.subarray(0, at)), at);
    at += 4;
  }
  const len = wire.readUIntBE(5, 3);
  if (dd && len > 0 && wire.length >= at + pad4(len) + 4) wire.writeUInt32LE(digest(wire.subarray(at, at + pad4(len))), at + pad4(len));
  return x;
}

// ============================================================================================== the table

function tempFileTarget(o: Omit<FuzzTarget, 'setup' | 'teardown' | 'run'> & { file: string; run: (path: string) => unknown }): FuzzTarget {
  let dir: string | undefined;
  let path = '';
  return {
    ...o,
    setup() {
      dir = mkdtempSync(join(tmpdir(), 'mocopy-fuzz-'));
      path = join(dir, o.file);
      writeFileSync(path, '', { mode: 0o600 });
      chmodSync(path, 0o600);
    },
    teardown() {
      if (dir) rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    },
    run(input) {
      writeFileSync(path, input);
      return o.run(path);
    },
  };
}

export const TARGETS: readonly FuzzTarget[] = [
  {
    name: 'sense',
    about: 'parseSense + formatSense (lib/scsi/sense.ts): fixed 70h/71h and descriptor 72h/73h sense; total, must never throw',
    allowed: [],
    input: () => bytesInput(fc.oneof(fixedSense, descriptorSense), { maxLen: 300, randomMax: 64 }),
    run(b) {
      const s = parseSense(b);
      if (s) formatSense(s);
    },
  },
  responseTarget('inquiry', 'parseInquiry (lib/scsi/parse.ts): standard INQUIRY data', identity.map((id) => ({ bytes: standardInquiry(id), fields: [f1(0), f1(1), f1(2), f1(3), f1(4)] })), parseInquiry),
  responseTarget('vpd', 'parseVpdPage (with and without the expected page), parseSupportedVpdPages, parseUnitSerial, parseDeviceIdentification, parseBlockLimits on one VPD page', vpdSample, async (b) => {
    await tolerate(F, () => parseVpdPage(b));
    await tolerate(F, () => parseVpdPage(b, b[1] ?? 0));
    await tolerate(F, () => parseVpdPage(b, ((b[1] ?? 0) + 1) & 0xff));
    await tolerate(F, () => parseSupportedVpdPages(b));
    await tolerate(F, () => parseUnitSerial(b));
    await tolerate(F, () => parseDeviceIdentification(b));
    await tolerate(F, () => parseBlockLimits(b));
  }),
  responseTarget('mode-sense-6', 'parseModeSense6: header, block descriptors, mode pages (page_0 and subpage format)', modeSense6Sample, parseModeSense6),
  responseTarget('mode-sense-10', 'parseModeSense10: header, short and LONGLBA block descriptors, mode pages', modeSense10Sample, parseModeSense10),
  responseTarget('read-capacity-10', 'parseReadCapacity10', fc.tuple(fc.integer({ min: 1, max: 2 ** 33 }), u32).map(([n, s]) => ({ bytes: readCapacity10Data(n, s), fields: [be(0, 4), be(4, 4)] })), parseReadCapacity10),
  responseTarget('read-capacity-16', 'parseReadCapacity16', fc.tuple(blockCount, u32).map(([n, s]) => ({ bytes: readCapacity16Data(n, s), fields: [be(0, 8), be(8, 4), f1(12), f1(13)] })), parseReadCapacity16),
  responseTarget('read-toc', 'parseToc: READ TOC format 0 (and session info bytes)', tocSample, parseToc),
  responseTarget('get-configuration', 'parseConfiguration: feature header and descriptors', configSample, parseConfiguration),
  responseTarget('report-luns', 'parseReportLuns + lunNumber of each LUN', lunsSample, (b) => parseReportLuns(b).map(lunNumber)),
  responseTarget('supported-opcodes', 'parseSupportedOpcodes: 8-byte and 20-byte (CTDP) descriptors', opcodesSample, parseSupportedOpcodes),
  responseTarget('media-serial-number', 'parseMediaSerialNumber', serialSample, parseMediaSerialNumber),
  {
    name: 'iso9660',
    about: 'readVolume, readDirectory over the tree (24 directories at most), lookupPath of the catalog, a program and each name found (lib/formats/iso9660.ts) '
      + 'through a ReadSectors callback; input: BE32 medium sectors + the volume from sector 16 (zeros elsewhere); a read past the medium or of more than 16 sectors is a finding',
    allowed: F,
    input: () => bytesInput(isoPool(), { maxLen: 256 << 10, randomMax: 4096, maxOps: 5 }),
    async run(input) {
      if (input.length < 4) return;
      const { read, medium } = isoReader(input);
      const vol = await readVolume(read, medium);
      const queue: Array<{ e: IsoEntry; path: string }> = [{ e: vol.root, path: '/' }];
      const paths: string[] = [];
      for (let n = 0; queue.length && n < 24; n++) {
        const { e, path } = queue.shift()!;
        const list = await tolerate(F, () => readDirectory(read, e, vol.totalSectors, { path }));
        for (const c of list ?? []) {
          const p = `${path === '/' ? '' : path}/${c.name}`;
          if (paths.length < 12) paths.push(p);
          if (c.isDir) queue.push({ e: c, path: p });
        }
      }
      let found = 0;
      for (const p of ['/MOCOPY.CAT', '/PROGRAMS/P0001.ENC', '/NOPE', ...paths]) if (await tolerate(F, () => lookupPath(read, vol, p))) found++;
      return `${found} of ${paths.length + 3} lookups found`;
    },
  },
  {
    name: 'catalog',
    about: 'decodeCatalog (lib/formats/catalog.ts) on JSON text',
    allowed: F,
    input: () => jsonInput(catalogJson, MAX_CATALOG_BYTES),
    run: (b) => decodeCatalog(b, 'fuzz'),
  },
  {
    name: 'disc-label',
    about: 'decodeLabel (lib/formats/disc-layout.ts) on a 2 KiB label; damaged labels are mostly re-sealed (SHA-256) so the JSON behind the checksum is reached',
    allowed: F,
    input: () => fc.oneof(
      bytesInput(labelJson.map((l) => ({ bytes: encodeLabel(l as { version: 1; blockSize: number; created: string }), fields: [be(8, 2)] })), {
        maxLen: LABEL_BYTES + 64, randomMax: 64, reseal: (b) => sealTail(b, LABEL_BYTES),
        extra: [{ weight: 1, arbitrary: fc.constant(Buffer.alloc(LABEL_BYTES)) }],
      }),
      jsonInput(labelJson, 4096).map((body) => sealAt(LABEL_BYTES, 'MOCOPYDL', 8, 10, body, 2)),
    ),
    run: (b) => decodeLabel(b),
  },
  {
    name: 'license-record',
    about: 'decodeLicenseRecord (lib/formats/disc-layout.ts) on a 2 KiB license slot, mostly re-sealed',
    allowed: F,
    input: () => fc.oneof(
      bytesInput(recordJson.map((o) => {
        const r = o as Record<string, string>;
        const rec = r.scheme === 'a'
          ? { scheme: 'a' as const, contentId: r.contentId!, centerId: r.centerId!, licenseId: r.licenseId!, certificate: Buffer.from(r.cs!, 'hex'), wrappedCertificationKey: Buffer.from(r.ekuKeyc!, 'hex'), wrappedContentKey: Buffer.from(r.ekuKd!, 'hex') }
          : { scheme: 'b' as const, contentId: r.contentId!, centerId: r.centerId!, licenseId: r.licenseId!, wrappedMediumKey: Buffer.from(r.emidKu!, 'hex') };
        return { bytes: encodeLicenseRecord(rec), fields: [be(8, 2)] };
      }), { maxLen: SLOT_BYTES + 64, randomMax: 64, reseal: (b) => sealTail(b, SLOT_BYTES), extra: [{ weight: 1, arbitrary: fc.constant(Buffer.alloc(SLOT_BYTES)) }] }),
      jsonInput(recordJson, 4096).map((body) => sealAt(SLOT_BYTES, 'MOCOPYLR', 8, 10, body, 2)),
    ),
    run: (b) => decodeLicenseRecord(b, 7),
  },
  {
    name: 'disc-directory',
    about: 'decodeDirectory, then validateDirectory against three medium sizes, chooseDirectory, freeSlot, nextExtentOffset (lib/formats/disc-layout.ts); mostly re-sealed',
    allowed: F,
    input: () => fc.oneof(
      bytesInput(directoryJson.map((d) => {
        const full = encodeDirectory(d);
        const len = full.readUInt32BE(16);
        return { bytes: full.subarray(0, 20 + len + 32), fields: [be(8, 8), be(16, 4)] };
      }), { maxLen: 1 << 20, randomMax: 128, reseal: sealDirectory }),
      fc.tuple(jsonInput(directoryJson.map((d) => ({ v: 1, ...d })) as unknown as fc.Arbitrary<Json>, 1 << 20), fc.oneof(fc.constant(-1n), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }))).map(([body, g]) => {
        let gen = g;
        if (gen < 0n) { try { gen = BigInt((JSON.parse(body.toString()) as { generation: number }).generation); } catch { gen = 1n; } }
        return directoryBytes(BigInt.asUintN(64, gen), body);
      }),
    ),
    run(b) {
      const d = decodeDirectory(b);
      if (!d) return;
      for (const m of [DATA_OFFSET, 640 << 20, Number.MAX_SAFE_INTEGER]) tolerateSync(F, () => validateDirectory(d, m));
      chooseDirectory([d, undefined]);
      freeSlot(d);
      nextExtentOffset(d);
    },
  },
  {
    name: 'mo-header',
    about: 'decodeMoHeader (lib/emulator/mo-image.ts) on a 4 KiB MO image header; mostly re-sealed (CRC-32)',
    allowed: F,
    input: () => bytesInput(fc.record({ blockSize: fc.constantFrom(512, 2048), blockCount: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), writeProtected: fc.boolean(), mediumId: bytes(64, 1) })
      .map((h) => ({ bytes: encodeMoHeader({ version: 1, ...h }), fields: [be(8, 4), be(12, 4), be(16, 8), be(24, 4), be(28, 2), f1(30), f1(93), f1(94), f1(4091)] })), {
      maxLen: MO_HEADER_SIZE + 64, randomMax: 64,
      reseal: (b) => { if (b.length < MO_HEADER_SIZE) return b; const x = Buffer.from(b); x.writeUInt32BE(crc32(x.subarray(0, MO_HEADER_SIZE - 4)), MO_HEADER_SIZE - 4); return x; },
    }),
    run: (b) => decodeMoHeader(b, 'fuzz'),
  },
  {
    name: 'stream-header',
    about: 'parseStreamHeader (lib/crypto/stream-aead.ts) on a 2 KiB header sector',
    allowed: [IntegrityError],
    input: () => bytesInput(fc.record({ purpose: u8, plainLength: fc.oneof(fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), id: bytes(32, 32) }).map((o) => {
      const s = Buffer.alloc(HEADER_SECTOR);
      createStreamHeader({ purpose: o.purpose, plainLength: o.plainLength, streamId: o.id, noncePrefix: Buffer.from('1234567') }).bytes.copy(s);
      return { bytes: s, fields: STREAM_HEADER_FIELDS };
    }), { maxLen: HEADER_SECTOR + 64, randomMax: 64 }),
    run: (b) => parseStreamHeader(b),
  },
  {
    name: 'stream-decrypt',
    about: 'decryptStream with a fixed key over arbitrary bytes; input: mode byte (bits 0-2 how the bytes are split into pieces, bit 3 expect the stream ID, '
      + 'bit 4 expect purpose 2, bit 5 stop after the first chunk) + the stream; a stream that decrypts must give plainLength bytes',
    allowed: [IntegrityError],
    input: () => {
      const streams = streamPool();
      // The option bits (3-5) are set one time in ten each: most streams are master programs of purpose 1.
      const mode = fc.tuple(fc.nat(7), fc.nat(9), fc.nat(9), fc.nat(9)).map(([split, a, b, c]) => split | (a ? 0 : 8) | (b ? 0 : 16) | (c ? 0 : 32));
      const withMode = (s: fc.Arbitrary<Buffer>) => fc.tuple(mode, s).map(([m, b]) => Buffer.concat([Buffer.from([m]), b]));
      return fc.oneof(
        { weight: 1, arbitrary: withMode(streams) },
        { weight: 5, arbitrary: withMode(fc.tuple(streams, fc.array(chunkOpArb, { minLength: 1, maxLength: 3 }), fc.array(opArb, { maxLength: 2 }))
          .map(([s, cops, ops]) => applyOps(chunkOps(s, cops), ops, STREAM_HEADER_FIELDS, 300_000))) },
        { weight: 3, arbitrary: withMode(mutated(streams.map((s) => ({ bytes: s, fields: STREAM_HEADER_FIELDS })), { maxLen: 300_000, maxOps: 3 })) },
        { weight: 1, arbitrary: bytes(4096) },
      );
    },
    async run(input) {
      if (input.length === 0) return;
      const mode = input[0]!;
      const data = input.subarray(1);
      const opts = { ...(mode & 8 ? { streamId: STREAM_ID } : {}), ...(mode & 16 ? { purpose: Purpose.DISC_COPY } : {}) };
      let n = 0;
      for await (const piece of decryptStream(STREAM_KEY, pieces(data, mode & 7), opts)) {
        n += piece.length;
        if (mode & 32) return;
      }
      const claimed = data.length >= 24 ? Number(data.readBigUInt64BE(16)) : -1;
      invariant(n === claimed, `decryptStream ended without error after ${n} bytes of a stream that claims ${claimed}`);
    },
  },
  {
    name: 'center-request',
    about: 'validateLicenseRequest (lib/center/center.ts) on the JSON value of the body (bytes that are not JSON end as the server ends them, before it)',
    allowed: [RefusedError],
    input: () => jsonInput(fc.record({ requestId: fc.uuid(), scheme: fc.constantFrom('a', 'b'), contentId, mediumId: fc.integer({ min: 1, max: 64 }).chain((n) => hex(n)) })),
    run(b) {
      let v: unknown;
      try {
        v = JSON.parse(b.toString('utf8'));
      } catch {
        return 'not JSON';
      }
      return validateLicenseRequest(v);
    },
  },
  {
    name: 'http-auth',
    about: 'requestMac, macMatches, responseMac (lib/center/http-auth.ts); input: station, method, path, timestamp, nonce, presented MAC, status, body separated by LF '
      + '(a presented MAC "@…" is the right MAC edited: "@" as is, "@U" uppercase, "@T" cut, "@+" extended, "@x…" one digit changed); macMatches must say yes to the right MAC only',
    allowed: [],
    input: () => {
      const line = fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.replace(/\n/g, ''));
      const fields = fc.record({
        station: fc.oneof(fc.constant('st-1a2b3c4d'), line), method: fc.oneof(fc.constantFrom('POST', 'GET', 'post', ''), line),
        path: fc.oneof(fc.constantFrom('/v1/licenses', '/v1/contents', '/'), line), ts: fc.oneof(fc.nat().map(String), line), nonce: fc.oneof(hex(16), line),
        mac: fc.oneof(fc.constantFrom('@', '@', '@U', '@T', '@+', '@ ', ''), fc.nat(63).map((i) => `@x${i}`), hex(32), line),
        status: fc.constantFrom('200', '401', '', 'abc', '-1', '1e400'), body: fc.string({ unit: 'binary', maxLength: 200 }),
      }).map((o) => ({ bytes: Buffer.from([o.station, o.method, o.path, o.ts, o.nonce, o.mac, o.status, o.body].join('\n'), 'latin1') }));
      return fc.oneof({ weight: 3, arbitrary: fields.map((s) => s.bytes) }, { weight: 2, arbitrary: mutated(fields, { maxLen: 2048, maxOps: 2 }) }, { weight: 1, arbitrary: bytes(300) });
    },
    run(input) {
      const KEY = Buffer.alloc(32, 7);
      const text = input.toString('latin1');
      const parts = text.split('\n');
      const [station = '', method = '', path = '', ts = '', nonce = '', mac, status = '0'] = parts;
      const body = Buffer.from(parts.slice(7).join('\n'), 'latin1');
      const expected = requestMac(KEY, station, method, path, ts, nonce, body);
      const right = expected.toString('hex');
      let presented = mac;
      if (mac?.startsWith('@')) {
        const e = mac.slice(1);
        if (e === '') presented = right;
        else if (e === 'U') presented = right.toUpperCase();
        else if (e === 'T') presented = right.slice(0, -1);
        else if (e.startsWith('x')) {
          const i = Number.parseInt(e.slice(1), 10) % 64 || 0;
          presented = right.slice(0, i) + (right[i] === '0' ? '1' : '0') + right.slice(i + 1);
        } else presented = e === '+' ? `${right}0` : `${e}${right}`;
      }
      const ok = macMatches(expected, presented);
      invariant(ok === (presented === right), `macMatches said ${ok} for ${JSON.stringify(presented)} (the right MAC is ${right})`);
      invariant(!macMatches(expected, undefined), 'macMatches said yes to no MAC');
      invariant(macMatches(expected, right), 'macMatches said no to the right MAC');
      const r = responseMac(KEY, station, Number.parseInt(status, 10), nonce, body);
      invariant(r.length === 32, 'responseMac is not 32 bytes');
    },
  },
  tempFileTarget({
    name: 'station-key',
    about: 'readStationKey (lib/center/station-key.ts) on a mode-0600 temp file holding the input',
    file: 'station.key',
    allowed: [StationKeyError, UsageError],
    input: () => jsonInput(fc.record({ format: fc.constant('mocopy-station-key'), version: fc.constant(1), stationId: fc.constant('st-1a2b3c4d'), centerId: fc.string({ maxLength: 20 }), key: hex(32) })),
    run: (path) => readStationKey(path),
  }),
  tempFileTarget({
    name: 'config',
    about: 'readConfigFile (lib/config.ts) on a temp file holding the input',
    file: 'config.json',
    allowed: [UsageError],
    input: () => jsonInput(fc.record({ center: fc.constantFrom('https://center.example:7443', 'http://127.0.0.1:7443'), centerDb: fc.constantFrom('ledger.db', '/var/lib/mocopy/center.db'), stationKey: fc.constantFrom('st.key', '/etc/mocopy/st.key'), scheme: fc.constantFrom('a', 'b') }, { requiredKeys: [] })),
    run: (path) => readConfigFile(path),
  }),
  tempFileTarget({
    name: 'quirks',
    about: 'loadQuirks (lib/scsi/quirks.ts) on a temp file holding the input, then each loaded entry must be usable: findQuirk, and readMediumId '
      + '(lib/scsi/medium-id.ts) with its method over a fake drive ends in a value or a typed MocopyError',
    file: 'quirks.json',
    allowed: [UsageError, MocopyError],
    input: () => {
      const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
      const method = fc.oneof(
        fc.constant({ type: 'read-media-serial-number' }), fc.constant({ type: 'unit-serial-standin' }),
        fc.record({ type: fc.constant('vpd'), page: u8, offset: opt(fc.nat(64)), length: opt(fc.nat(64)) }, { requiredKeys: ['type', 'page'] }),
        fc.record({ type: fc.constant('read-disc-structure'), format: u8, offset: opt(fc.nat(64)), length: opt(fc.nat(64)) }, { requiredKeys: ['type', 'format'] }),
        fc.record({ type: fc.constant('vendor-cdb'), cdb: fc.uint8Array({ minLength: 6, maxLength: 16 }).map((a) => Buffer.from(a).toString('hex')), alloc: fc.integer({ min: 1, max: 65535 }), offset: opt(fc.nat(64)), length: opt(fc.nat(64)) }, { requiredKeys: ['type', 'cdb', 'alloc'] }),
      );
      const quirk = fc.record({ vendor: fc.constantFrom('HP', 'QEMU', 'FUJITSU'), product: fc.constantFrom('C1113', '*', 'MCR3230'), revision: opt(fc.constantFrom('1.0', '')), method, note: opt(fc.string({ maxLength: 20 })) }, { requiredKeys: ['vendor', 'product', 'method'] });
      return jsonInput(fc.array(quirk, { minLength: 1, maxLength: 4 }) as fc.Arbitrary<Json>);
    },
    async run(path) {
      const table = loadQuirks(path);
      const user = table.slice(0, table.length - BUILTIN_QUIRKS.length);
      const drive: DataInRunner = {
        spec: 'fuzz',
        async dataIn(cdb, alloc) {
          // Answers like a drive would: alloc bytes, a VPD-style header naming the page asked for.
          const b = Buffer.alloc(alloc, 0x31);
          if (alloc >= 4) { b[0] = 0; b[1] = cdb[2] ?? 0; b.writeUInt16BE(Math.min(alloc - 4, 0xffff), 2); }
          return b;
        },
      };
      for (const q of user.slice(0, 8)) {
        findQuirk({ vendor: q.vendor, product: q.product, revision: q.revision ?? '' }, table);
        await tolerate([MocopyError], () => readMediumId(drive, q.method));
      }
    },
  }),
  {
    name: 'iscsi-pdu',
    about: 'decodePdu (lib/iscsi/pdu.ts); input: a byte whose bits 0/1 turn on header/data digests, then the PDU wire bytes',
    allowed: [PduFormatError],
    input: () => {
      const pdu = fc.record({
        hd: fc.boolean(), dd: fc.boolean(), opcode: fc.oneof(fc.constantFrom(0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10), fc.nat(0x3f)), immediate: fc.boolean(),
        flags: u8, ahsWords: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(4) }), data: bytes(100), itt: u32, word20: u32, word24: u32, word28: u32,
      }).map((o): Sample => ({
        bytes: Buffer.concat([Buffer.from([(o.hd ? 1 : 0) | (o.dd ? 2 : 0)]), rawPdu({ ...o, ahs: Buffer.alloc(o.ahsWords * 4, 0xa5) }, o.hd, o.dd)]),
        fields: [f1(0), f1(1), f1(2), f1(5), { at: 6, size: 3 }, be(17, 4), be(1 + BHS_BYTES, 4)],
      }));
      return bytesInput(pdu, { maxLen: 1024, randomMax: 200, reseal: resealPdu });
    },
    run(input) {
      if (!input.length) return;
      const hd = !!(input[0]! & 1);
      const dd = !!(input[0]! & 2);
      const wire = input.subarray(1);
      if (wire.length >= BHS_BYTES) wireLength(wire.subarray(0, BHS_BYTES), hd, dd);
      return decodePdu(wire, hd, dd);
    },
  },
  {
    name: 'iscsi-text',
    about: 'decodeText, negotiate in the security, operational and full feature phases, applyAgreed, encodeText (lib/iscsi/text.ts); total, must never throw; '
      + 'input: one byte (bit 0: digests offered) + the text data segment',
    allowed: [],
    input: () => bytesInput(fc.tuple(fc.boolean(), keyValues).map(([d, kv]) => ({ bytes: Buffer.concat([Buffer.from([d ? 1 : 0]), encodeText(kv)]) })), { maxLen: 4096, randomMax: 200 }),
    run(input) {
      if (!input.length) return;
      const table = targetTable({ maxRecvDataSegmentLength: 262144, maxBurstLength: 1 << 20, firstBurstLength: 262144, maxOutstandingR2T: 1, digests: !!(input[0]! & 1) });
      const kv = decodeText(input.subarray(1));
      for (const phase of ['security', 'operational', 'full'] as const) {
        const n = negotiate(kv, table, phase);
        const p = applyAgreed(DEFAULT_PARAMETERS, n.agreed);
        for (const k of ['initiatorMaxRecv', 'maxBurstLength', 'firstBurstLength', 'maxOutstandingR2T'] as const) {
          invariant(Number.isSafeInteger(p[k]) && p[k] > 0, `applyAgreed gave ${k} = ${p[k]}`);
        }
        encodeText(n.answer);
      }
    },
  },
  {
    name: 'iscsi-login',
    about: 'LoginExchange.step (lib/iscsi/login.ts) on the login PDUs of one connection, decoded with decodePdu + loginRequestOf + decodeText; input: a byte (bit 0 target '
      + 'requires CHAP, bit 1 digests offered) + PDUs back to back (CHAP_R=auto is replaced by the right answer to the last challenge); a failed step must not leave a session',
    allowed: [PduFormatError],
    input: () => {
      const golden = fc.constantFrom(...GOLDEN_LOGINS).map((g) => ({ bytes: loginInput(g.chap, false, g.steps) }));
      const random = fc.tuple(fc.boolean(), fc.boolean(), fc.array(loginStep, { minLength: 1, maxLength: 5 })).map(([c, d, steps]) => loginInput(c, d, steps));
      const spliced = fc.tuple(fc.constantFrom(...GOLDEN_LOGINS), fc.nat(4), loginStep).map(([g, at, s]) => {
        const steps = [...g.steps];
        steps.splice(at % (steps.length + 1), 0, s);
        return loginInput(g.chap, false, steps);
      });
      return bytesInput(golden, { maxLen: 8192, randomMax: 200, extra: [{ weight: 4, arbitrary: random }, { weight: 3, arbitrary: spliced }] });
    },
    run(input) {
      if (!input.length) return;
      const chap = input[0]! & 1 ? { user: 'user', secret: CHAP_SECRET } : undefined;
      const x = new LoginExchange({
        targetName: IQN, portal: '127.0.0.1:3260,1', ...(chap ? { chap } : {}), maxRecvDataSegmentLength: 262144,
        table: targetTable({ maxRecvDataSegmentLength: 262144, maxBurstLength: 1 << 20, firstBurstLength: 262144, maxOutstandingR2T: 1, digests: !!(input[0]! & 2) }),
      });
      let last: { id: number; challenge: Buffer } | undefined;
      let at = 1;
      for (let n = 0; n < 16 && at + BHS_BYTES <= input.length; n++) {
        const len = wireLength(input.subarray(at, at + BHS_BYTES), false, false);
        const pdu = decodePdu(input.subarray(at, at + len), false, false);
        at += len;
        if (pdu.opcode !== 0x03) return;
        const keys: KeyValues = decodeText(pdu.data).map(([k, v]) => (k === 'CHAP_R' && v === 'auto' && last ? [k, encodeBinary(chapResponse(last.id, CHAP_SECRET, last.challenge))] : [k, v]));
        const r = x.step(loginRequestOf(pdu, keys));
        const got = new Map(r.keys);
        const c = got.get('CHAP_C');
        if (got.has('CHAP_I') && c) last = { id: Number(got.get('CHAP_I')), challenge: decodeBinary(c) ?? Buffer.alloc(0) };
        invariant(r.status === LoginStatus.SUCCESS || !x.complete, `a login step that failed (0x${r.status.toString(16)}) left a complete session`);
        if (r.status !== LoginStatus.SUCCESS || x.complete) break;
      }
      if (!x.complete) return `incomplete after ${x.stage === 0 ? 'security' : 'operational'} stage`;
      {
        for (const k of ['initiatorMaxRecv', 'maxBurstLength', 'firstBurstLength', 'maxOutstandingR2T'] as const) {
          invariant(Number.isSafeInteger(x.params[k]) && x.params[k] > 0, `login agreed ${k} = ${x.params[k]}`);
        }
        invariant(x.params.firstBurstLength <= x.params.maxBurstLength, 'login agreed FirstBurstLength > MaxBurstLength');
      }
      return `complete (${x.sessionType}${chap ? ', CHAP' : ''})`;
    },
  },
];

/** Targets that misbehave on purpose, to check the runner (MOCOPY_FUZZ_SELFTEST=1): byte 0 says how. */
const SELFTEST: readonly FuzzTarget[] = [{
  name: 'selftest',
  about: 'the runner\'s own check: byte 0 = 1 hangs, 2 allocates by a BE32 length field, 3 runs past the cap, 4 throws a TypeError, 5 breaks an invariant',
  allowed: [FormatError],
  input: () => fc.oneof({ weight: 200, arbitrary: bytes(8) }, { weight: 1, arbitrary: fc.tuple(fc.constantFrom(1, 2, 3, 4, 5), bytes(8)).map(([k, b]) => Buffer.concat([Buffer.from([k, 0x7f]), b])) }),
  run(b) {
    switch (b[0]) {
      case 1: for (;;);
      case 2: return Buffer.alloc(b.length >= 5 ? b.readUInt32BE(1) : 0);
      case 3: { const t = Date.now(); while (Date.now() - t < 1200); return; }
      case 4: return (null as unknown as { x: number }).x;
      case 5: return invariant(false, 'selftest invariant');
      default: if (b.length > 6) throw new FormatError('typed');
    }
  },
}];

const ALL = process.env.MOCOPY_FUZZ_SELFTEST === '1' ? [...TARGETS, ...SELFTEST] : TARGETS;

export function targetByName(name: string): FuzzTarget | undefined {
  return ALL.find((t) => t.name === name);
}

/** The targets the runner offers: TARGETS, plus the self-test one when MOCOPY_FUZZ_SELFTEST=1. */
export function runnableTargets(): readonly FuzzTarget[] {
  return ALL;
}
