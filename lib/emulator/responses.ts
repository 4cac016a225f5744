/**
 * Pure builders of the data an emulated drive answers with (INQUIRY, VPD pages, capacity,
 * mode pages, TOC, feature lists). Kept apart from the dispatcher so each can be checked alone.
 */
import type { MediumKind } from './medium.js';

export interface Identity {
  kind: MediumKind;
  vendor: string;
  product: string;
  revision: string;
  /** The drive's unit serial (VPD 0x80): belongs to the drive, not the disc. */
  serial: string;
  maxTransferBlocks: number;
}

function pad(text: string, n: number): Buffer {
  return Buffer.from(text.padEnd(n, ' ').slice(0, n), 'latin1');
}

export const PDT = { mo: 0x07, cd: 0x05 } as const;

export function standardInquiry(id: Identity): Buffer {
  const b = Buffer.alloc(96);
  b[0] = PDT[id.kind];
  b[1] = 0x80; // RMB: removable medium
  b[2] = 0x06; // SPC-4
  b[3] = 0x02; // response data format 2
  b[4] = b.length - 5;
  b[7] = 0x02; // CMDQUE
  pad(id.vendor, 8).copy(b, 8);
  pad(id.product, 16).copy(b, 16);
  pad(id.revision, 4).copy(b, 32);
  return b;
}

export const SUPPORTED_VPD = [0x00, 0x80, 0x83, 0xb0];

function vpd(kind: MediumKind, page: number, body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h[0] = PDT[kind];
  h[1] = page;
  h.writeUInt16BE(body.length, 2);
  return Buffer.concat([h, body]);
}

export function vpdPage(id: Identity, page: number): Buffer | undefined {
  switch (page) {
    case 0x00: return vpd(id.kind, 0, Buffer.from(SUPPORTED_VPD));
    case 0x80: return vpd(id.kind, 0x80, Buffer.from(id.serial, 'latin1'));
    case 0x83: {
      // One T10 vendor ID designator (code set ASCII, association LU): vendor + product + serial.
      const text = Buffer.concat([pad(id.vendor, 8), Buffer.from(`${id.product.trim()}-${id.serial}`, 'latin1')]);
      const d = Buffer.alloc(4);
      d[0] = 0x02;
      d[1] = 0x01;
      d[3] = text.length;
      return vpd(id.kind, 0x83, Buffer.concat([d, text]));
    }
    case 0xb0: {
      const body = Buffer.alloc(0x3c);
      body.writeUInt32BE(id.maxTransferBlocks, 4); // MAXIMUM TRANSFER LENGTH
      body.writeUInt32BE(Math.min(id.maxTransferBlocks, 32), 8); // OPTIMAL TRANSFER LENGTH
      return vpd(id.kind, 0xb0, body);
    }
    default: return undefined;
  }
}

export function readCapacity10Data(blockCount: number, blockSize: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(blockCount - 1 > 0xfffffffe ? 0xffffffff : blockCount - 1, 0);
  b.writeUInt32BE(blockSize, 4);
  return b;
}

export function readCapacity16Data(blockCount: number, blockSize: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64BE(BigInt(blockCount - 1), 0);
  b.writeUInt32BE(blockSize, 8);
  return b;
}

/** Caching mode page 08h: WCE set (the drive has a write-back cache). */
function cachingPage(): Buffer {
  const p = Buffer.alloc(20);
  p[0] = 0x08;
  p[1] = 18;
  p[2] = 0x04; // WCE
  return p;
}

/** Control mode page 0Ah (SPC-5 7.5.9): fixed-format sense (D_SENSE 0), no software write protect. */
function controlPage(): Buffer {
  const p = Buffer.alloc(12);
  p[0] = 0x0a;
  p[1] = 10;
  p[8] = 0xff; // obsolete busy timeout period: unlimited
  p[9] = 0xff;
  return p;
}

export const MODE_PAGES: Record<number, () => Buffer> = { 0x08: cachingPage, 0x0a: controlPage };

export function modePages(page: number): Buffer | undefined {
  if (page === 0x3f) return Buffer.concat(Object.values(MODE_PAGES).map((f) => f()));
  const f = MODE_PAGES[page];
  return f ? f() : undefined;
}

/** Short-LBA mode parameter block descriptor: blocks (BE32, saturated) and block length (BE24). */
function blockDescriptor(dbd: boolean, blockCount: number, blockSize: number): Buffer {
  const bd = Buffer.alloc(dbd ? 0 : 8);
  if (!dbd) {
    bd.writeUInt32BE(Math.min(blockCount, 0xffffffff), 0);
    bd.writeUIntBE(blockSize, 5, 3);
  }
  return bd;
}

export function modeSense6Data(wp: boolean, blockCount: number, blockSize: number, dbd: boolean, pages: Buffer): Buffer {
  const bd = blockDescriptor(dbd, blockCount, blockSize);
  const h = Buffer.alloc(4);
  h[0] = 3 + bd.length + pages.length;
  h[2] = wp ? 0x80 : 0;
  h[3] = bd.length;
  return Buffer.concat([h, bd, pages]);
}

export function modeSense10Data(wp: boolean, blockCount: number, blockSize: number, dbd: boolean, pages: Buffer): Buffer {
  const bd = blockDescriptor(dbd, blockCount, blockSize);
  const h = Buffer.alloc(8);
  h.writeUInt16BE(6 + bd.length + pages.length, 0);
  h[3] = wp ? 0x80 : 0;
  h.writeUInt16BE(bd.length, 6);
  return Buffer.concat([h, bd, pages]);
}

function lbaToMsf(lba: number): Buffer {
  const f = lba + 150;
  return Buffer.from([0, Math.floor(f / 4500), Math.floor(f / 75) % 60, f % 75]);
}

/** READ TOC format 0: one data track and the lead-out. */
export function tocData(blockCount: number, msf: boolean, startTrack: number): Buffer | undefined {
  const tracks: Array<[number, number]> = [[1, 0], [0xaa, blockCount]];
  const chosen = tracks.filter(([t]) => startTrack === 0 || t >= startTrack);
  if (startTrack > 1 && startTrack !== 0xaa) return undefined;
  const descs = chosen.map(([track, lba]) => {
    const d = Buffer.alloc(8);
    d[1] = 0x14; // ADR 1, CONTROL 4: data track
    d[2] = track;
    (msf ? lbaToMsf(lba) : (() => { const x = Buffer.alloc(4); x.writeUInt32BE(lba); return x; })()).copy(d, 4);
    return d;
  });
  const h = Buffer.alloc(4);
  h.writeUInt16BE(2 + descs.length * 8, 0);
  h[2] = 1;
  h[3] = 1;
  return Buffer.concat([h, ...descs]);
}

/** READ TOC format 1: session info (one session starting at track 1, LBA 0). */
export function sessionInfoData(msf: boolean): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(10, 0);
  b[2] = 1;
  b[3] = 1;
  b[5] = 0x14;
  b[6] = 1;
  if (msf) lbaToMsf(0).copy(b, 8);
  return b;
}

/** GET CONFIGURATION: profile list, core, and (MO) the Media Serial Number feature 0109h. */
export function configurationData(kind: MediumKind, mediumPresent: boolean, rt: number, start: number): Buffer {
  const profile = kind === 'mo' ? 0x0003 : 0x0008; // MO erasable / CD-ROM
  const feat = (code: number, current: boolean, data: Buffer) => {
    const h = Buffer.alloc(4);
    h.writeUInt16BE(code, 0);
    h[2] = (current ? 1 : 0) | 0x02;
    h[3] = data.length;
    return Buffer.concat([h, data]);
  };
  const pl = Buffer.alloc(4);
  pl.writeUInt16BE(profile, 0);
  pl[2] = mediumPresent ? 1 : 0;
  const core = Buffer.alloc(8);
  core.writeUInt32BE(0x00000001, 0); // physical interface: SCSI
  const all: Array<[number, Buffer]> = [[0x0000, feat(0x0000, true, pl)], [0x0001, feat(0x0001, true, core)]];
  if (kind === 'mo') all.push([0x0109, feat(0x0109, mediumPresent, Buffer.alloc(0))]);
  const chosen = all.filter(([code]) => (rt === 2 ? code === start : code >= start));
  const body = Buffer.concat(chosen.map(([, b]) => b));
  const h = Buffer.alloc(8);
  h.writeUInt32BE(4 + body.length, 0);
  h.writeUInt16BE(mediumPresent ? profile : 0, 6);
  return Buffer.concat([h, body]);
}
