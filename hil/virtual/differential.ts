/**
 * The differential run of the virtual rig (issue 10 item 4): the same seeded sequence of CDBs, sent through
 * SG_IO by mocopy's addon to a target nobody here wrote (the guest kernel's scsi_debug as an optical-memory
 * drive of 2048-byte blocks) and to mocopy's emulated MO drive served over iSCSI (QEMU's initiator, a
 * scsi-generic /dev/sgN), both media of the same size and zero-filled at the start. Every answer is compared —
 * status, host status, sense key/ASC/ASCQ, residual, and the returned bytes where they are comparable — and
 * every disagreement is either explained by a row of DELIBERATE (docs/hil-crosscheck.md has the same table) or
 * counted as unexplained. On the host, iscsi-host.ts replays the same sequence against the emulator in-process
 * (replayInProcess: no QEMU, no iSCSI), which tells the emulator's own answer apart from what QEMU and the iSCSI
 * path did to it.
 *
 * Runs in the guest (guest-main.ts spawns it after reloading scsi_debug): prints a mocha json-stream line (the
 * check), and @@MOCOPY-DATA records (figures, per-row counts, unexplained groups with their commands and examples).
 * usage: MOCOPY_HIL_DIFF='{"sd":"/dev/sgN","mo":"/dev/sgM","seed":…,"count":…,"window":8}' node differential.js
 */
import { createCipheriv, createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { openTransport } from '../../lib/drives/open.js';
import { createMoImage } from '../../lib/emulator/mo-image.js';
import { seededRandom } from '../../lib/emulator/faults.js';
import { parseSense } from '../../lib/scsi/sense.js';
import type { DataDirection, ScsiResult, Transport } from '../../lib/scsi/transport.js';

// ------------------------------------------------------------------------------------------------ commands

/** What of a GOOD answer's data both sides must agree on. */
export type Compare =
  | 'none' // no data, or nothing comparable (VPD designators, the supported-opcodes list, a medium serial number)
  | 'data' // every byte (READ, READ CAPACITY, REPORT LUNS)
  | 'inquiry' // standard INQUIRY: peripheral qualifier/type, RMB, additional length — not the identity strings
  | 'vpd' // VPD header: peripheral type and page code
  | 'mode6' | 'mode10' // mode parameter header: medium type, WP bit; the block descriptor when both return one
  | 'sense' // REQUEST SENSE: format, sense key, ASC, ASCQ
  | 'rsoc'; // REPORT SUPPORTED OPERATION CODES, one command: the SUPPORT field, for opcodes both implement

export interface Cmd {
  /** Command name, e.g. 'READ(10)'. */
  name: string;
  /** What kind of case: 'in range', 'past the end', 'huge transfer length', 'reserved bit', … */
  variant: string;
  cdb: Buffer;
  dir: DataDirection;
  /** Data buffer bytes. */
  len: number;
  /** Bytes the CDB itself asks to move (QEMU's scsi_req_xfer rules); more than `len` means a short buffer (which
   *  QEMU lets through for a scsi-generic device: virtio-scsi takes the length from the guest's request). */
  xfer: number;
  /** How a data-out buffer is filled: seeded random bytes, the media as they are, that with one byte flipped, the first block. */
  fill?: 'random' | 'model' | 'model-flip' | 'model-first';
  /** The blocks a write changes when it succeeds. */
  writes?: { lba: number; blocks: number };
  cmp: Compare;
}

/** Opcodes both implement (REPORT SUPPORTED OPERATION CODES' SUPPORT field is compared for these). */
export const COMMON_OPCODES = [0x00, 0x03, 0x08, 0x0a, 0x12, 0x1a, 0x1b, 0x1e, 0x25, 0x28, 0x2a, 0x2f, 0x35, 0x5a, 0x88, 0x8a, 0x8f, 0x9e, 0xa0, 0xa3, 0xa8, 0xaa];
/** Opcodes neither implements (checked: scsi_debug 6.1 and the emulator both answer 05/20/00), by CDB group. */
export const INVALID_OPCODES = [0x02, 0x05, 0x06, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x13, 0x14, 0x19, 0x1c, 0x20, 0x21, 0x22, 0x23, 0x24, 0x26, 0x27, 0x29, 0x2c, 0x2d, 0x38, 0x39, 0x3a, 0x44, 0x45, 0x47, 0x49, 0x4b, 0x4e, 0x4f, 0x80, 0x81, 0x82, 0x84, 0x86, 0x87, 0xa1, 0xa4, 0xa6, 0xa7, 0xa9, 0xac, 0xb0, 0xb1, 0xb2, 0xb4, 0xb6];

const GROUP_LEN = (op: number) => [6, 10, 10, 0, 16, 12, 0, 0][op >> 5]!;

/**
 * The seeded CDB source. `next()` gives one step: usually one command, sometimes a short sequence whose order
 * matters (STOP, then TEST UNIT READY, then START; a failing command, then REQUEST SENSE).
 */
export class Generator {
  private readonly r: () => number;
  private readonly C: number;
  constructor(seed: number, readonly blocks: number, readonly blockSize: number) {
    this.r = seededRandom(seed);
    this.C = blocks;
  }

  private int(a: number, b: number): number {
    return a + Math.floor(this.r() * (b - a + 1));
  }
  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)]!;
  }
  private chance(p: number): boolean {
    return this.r() < p;
  }

  /** A control byte: almost always 0; sometimes NACA, LINK or the vendor bits. */
  private control(): { byte: number; variant?: string } {
    if (!this.chance(0.03)) return { byte: 0 };
    return this.pick([{ byte: 0x04, variant: 'NACA set' }, { byte: 0x01, variant: 'LINK set' }, { byte: 0xc0, variant: 'vendor control bits' }]);
  }

  /** Sets one reserved bit of `cdb` (from `spots`: [byte, mask]) with a small probability; returns the variant name. */
  private reserved(cdb: Buffer, spots: Array<[number, number]>, p = 0.06): string | undefined {
    if (!spots.length || !this.chance(p)) return undefined;
    const [byte, mask] = this.pick(spots);
    const bits = [0, 1, 2, 3, 4, 5, 6, 7].filter((b) => mask & (1 << b));
    const bit = this.pick(bits);
    cdb[byte] = cdb[byte]! | (1 << bit);
    return `reserved bit ${byte}.${bit}`;
  }

  private finish(c: Omit<Cmd, 'cdb'> & { cdb: Buffer }, spots: Array<[number, number]> = []): Cmd {
    const res = this.reserved(c.cdb, spots);
    const ctl = this.control();
    c.cdb[c.cdb.length - 1] = ctl.byte;
    const variant = [c.variant, res, ctl.variant].filter(Boolean).join(', ');
    return { ...c, variant };
  }

  /** LBA and transfer length for a READ/WRITE/VERIFY family command. `bits` limits the LBA, `maxTl` the length field. */
  private shape(bits: 21 | 32 | 64, maxTl: number, opts: { noWrap?: boolean } = {}): { lba: bigint; tl: number; variant: string } {
    const C = this.C;
    const r = this.r();
    const maxLba = bits === 21 ? 0x1fffffn : bits === 32 ? 0xffffffffn : 0xffffffffffffffffn;
    const small = () => this.int(1, Math.min(8, maxTl));
    if (r < 0.5) { const tl = small(); return { lba: BigInt(this.int(0, C - tl)), tl, variant: 'in range' }; }
    if (r < 0.6) { const tl = small(); return { lba: BigInt(C - tl), tl, variant: 'ending at the last block' }; }
    if (r < 0.68) { const k = this.int(1, 7); const tl = Math.min(maxTl, this.int(k + 1, k + 8)); return { lba: BigInt(C - k), tl, variant: 'crossing the end' }; }
    if (r < 0.76) { const tl = this.int(1, Math.min(4, maxTl)); return { lba: BigInt(C + this.pick([0, 0, 1, 2, this.int(3, 5000)])), tl, variant: 'past the end' }; }
    if (r < 0.84 && maxTl !== 0xff) {
      const lba = this.pick([0, this.int(0, C - 1), C - 1, C, C, C + 1, C + this.int(2, 100)]);
      return { lba: BigInt(lba), tl: 0, variant: lba < C ? 'zero length, in range' : lba === C ? 'zero length at the capacity' : 'zero length past the end' };
    }
    if (r < 0.92 && maxTl === 0xff) { const lba = C - this.int(1, 100); return { lba: BigInt(lba), tl: 255, variant: 'huge transfer length' }; }
    if (r < 0.92) {
      // A transfer length the medium cannot hold: always out of range, so no side moves data.
      const tls = [C + 1, C + this.int(2, 1000), maxTl, Math.floor(maxTl / 2) + 1].filter((t) => t <= maxTl && t > 8);
      const tl = this.pick(tls);
      const lba = this.pick([0, 1, this.int(0, C - 1), C - 1]);
      return { lba: BigInt(lba), tl: lba + tl > C ? tl : C + 1, variant: 'huge transfer length' };
    }
    const huge: bigint[] = bits === 21 ? [0x1fffffn, 0x100000n, BigInt(C * 100)] : bits === 32 ? [0xffffffffn, 0x80000000n, 0xfffffffen, BigInt(C) * 1000n] : opts.noWrap
      ? [0xffffffffn, 0x100000000n, 0x8000000000000000n, 1n << 53n, 0x7fffffffffffffffn]
      : [0xffffffffn, 0x100000000n, 0x8000000000000000n, 1n << 53n, 0xffffffffffffffffn, 0xfffffffffffffffen];
    let lba = this.pick(huge);
    if (lba > maxLba) lba = maxLba;
    return { lba, tl: this.int(1, Math.min(4, maxTl)), variant: 'huge LBA' };
  }

  /** Data buffer for a transfer of `tl` blocks: the whole transfer when small, else one block (the buffer is then short). */
  private buffer(tl: number): number {
    const bytes = tl * this.blockSize;
    return tl === 0 ? 0 : tl <= 16 ? bytes : this.blockSize;
  }

  private rw(kind: 'READ' | 'WRITE' | 'VERIFY' | 'WRITE AND VERIFY', size: 6 | 10 | 12 | 16): Cmd {
    const ops = { READ: { 6: 0x08, 10: 0x28, 12: 0xa8, 16: 0x88 }, WRITE: { 6: 0x0a, 10: 0x2a, 12: 0xaa, 16: 0x8a }, VERIFY: { 10: 0x2f, 12: 0xaf, 16: 0x8f }, 'WRITE AND VERIFY': { 10: 0x2e, 12: 0xae, 16: 0x8e } } as const;
    const op = (ops[kind] as Record<number, number>)[size]!;
    const writes = kind === 'WRITE' || kind === 'WRITE AND VERIFY';
    const bits = size === 6 ? 21 : size === 16 ? 64 : 32;
    const maxTl = size === 6 ? 0xff : size === 10 ? 0xffff : 0xffffffff;
    // A 64-bit LBA near 2^64 wraps in scsi_debug's range check (lba + num); it would write somewhere: reads only.
    const s = this.shape(bits, maxTl, { noWrap: writes || kind === 'VERIFY' });
    const cdb = Buffer.alloc(size);
    cdb[0] = op;
    let variant = s.variant;
    const spots: Array<[number, number]> = [];
    if (size === 6) {
      cdb.writeUIntBE(Number(s.lba), 1, 3);
      cdb[4] = s.tl & 0xff;
    } else {
      if (size === 16) cdb.writeBigUInt64BE(s.lba, 2); else cdb.writeUInt32BE(Number(s.lba), 2);
      if (size === 10) cdb.writeUInt16BE(s.tl, 7); else if (size === 12) cdb.writeUInt32BE(s.tl, 6); else cdb.writeUInt32BE(s.tl, 10);
      const groupByte = size === 10 ? 6 : size === 12 ? 10 : 14;
      spots.push([groupByte, 0xc0]);
      if ((kind === 'READ' || kind === 'WRITE') && this.chance(0.3)) { cdb[1] = cdb[1]! | 0x08; variant += ', FUA'; }
      if (this.chance(0.1)) { cdb[1] = cdb[1]! | 0x10; variant += ', DPO'; }
      if (this.chance(0.04)) { cdb[1] = cdb[1]! | (this.int(1, 7) << 5); variant += `, ${kind === 'READ' ? 'RD' : kind === 'VERIFY' ? 'VR' : 'WR'}PROTECT≠0`; }
      if (kind === 'WRITE') spots.push([1, 0x04]);
      if (kind === 'WRITE AND VERIFY') spots.push([1, 0x08]);
      if (kind === 'VERIFY') spots.push([1, 0x08]);
      if (this.chance(0.05)) { cdb[groupByte] = this.int(1, 0x1f); variant += ', group number'; }
    }
    const tl = size === 6 && s.tl === 0 ? 256 : s.tl;
    const bs = this.blockSize;
    let xfer = tl * bs;
    let dir: DataDirection = kind === 'READ' ? 'in' : 'out';
    let fill: Cmd['fill'] = writes ? 'random' : undefined;
    const cmp: Compare = kind === 'READ' ? 'data' : 'none';
    if (kind === 'VERIFY' || kind === 'WRITE AND VERIFY') {
      const bytchk = kind === 'VERIFY' ? this.pick([0, 0, 1, 1, 1, 3, 2]) : this.pick([0, 0, 1]);
      cdb[1] = cdb[1]! | (bytchk << 1);
      if (kind === 'VERIFY') {
        variant += `, BYTCHK ${bytchk}`;
        // QEMU: BYTCHK bit 1 clear -> no data; bit 2 set -> one block; else the whole range.
        xfer = !(bytchk & 1) ? 0 : bytchk & 2 ? bs : tl * bs;
        fill = bytchk === 0 || bytchk === 2 ? undefined : bytchk === 3 ? 'model-first' : this.chance(0.2) ? 'model-flip' : 'model';
        dir = xfer ? 'out' : 'none';
      } else if (bytchk) variant += ', BYTCHK 1';
    }
    const len = kind === 'VERIFY' ? (xfer === 0 ? 0 : xfer <= 16 * bs ? xfer : bs) : this.buffer(tl);
    if (len === 0) dir = 'none';
    const name = `${kind}(${size})`;
    const w = writes && s.lba < BigInt(this.C) ? { lba: Number(s.lba), blocks: Math.min(tl, this.C - Number(s.lba)) } : undefined;
    return this.finish({ name, variant, cdb, dir, len, xfer, ...(dir === 'out' && fill ? { fill } : {}), ...(w && tl > 0 ? { writes: w } : {}), cmp }, spots);
  }

  private inquiry(): Cmd {
    const cdb = Buffer.alloc(6);
    cdb[0] = 0x12;
    const r = this.r();
    let variant: string;
    let cmp: Compare;
    let alloc: number;
    if (r < 0.4) {
      alloc = this.pick([0, 1, 4, 5, 8, 36, 36, 56, 74, 96, 96, 255, 512, 1024]);
      variant = `standard, allocation length ${alloc}`;
      cmp = 'inquiry';
    } else if (r < 0.85) {
      const page = this.pick([0x00, 0x80, 0x83, 0xb0]);
      alloc = this.pick([0, 2, 4, 8, 16, 64, 255, 1024]);
      cdb[1] = 1;
      cdb[2] = page;
      variant = `VPD ${page.toString(16).padStart(2, '0')}h, allocation length ${alloc}`;
      cmp = 'vpd';
    } else if (r < 0.92) {
      alloc = 64;
      cdb[1] = 1;
      cdb[2] = this.pick([0x81, 0x82, 0x8a, 0x8f, 0xc0, 0xd1, 0xfe, 0xff]);
      variant = 'unsupported VPD page';
      cmp = 'vpd';
    } else if (r < 0.96) {
      alloc = 36;
      cdb[2] = this.int(1, 255);
      variant = 'EVPD 0 with a page code';
      cmp = 'inquiry';
    } else {
      alloc = 36;
      cdb[1] = 0x02;
      variant = 'CMDDT set';
      cmp = 'inquiry';
    }
    cdb.writeUInt16BE(alloc, 3);
    return this.finish({ name: 'INQUIRY', variant, cdb, dir: alloc ? 'in' : 'none', len: alloc, xfer: alloc, cmp }, [[1, 0xfc]]);
  }

  private readCapacity(): Cmd {
    if (this.chance(0.5)) {
      const cdb = Buffer.alloc(10);
      cdb[0] = 0x25;
      let variant = 'plain';
      const r = this.r();
      if (r < 0.15) { cdb[8] = 1; cdb.writeUInt32BE(this.int(0, this.C + 10), 2); variant = 'PMI 1 with an LBA'; }
      else if (r < 0.25) { cdb.writeUInt32BE(this.int(1, this.C), 2); variant = 'PMI 0 with an LBA'; }
      return this.finish({ name: 'READ CAPACITY(10)', variant, cdb, dir: 'in', len: 8, xfer: 8, cmp: 'data' }, [[1, 0xff], [6, 0xff], [7, 0xff], [8, 0xfe]]);
    }
    const cdb = Buffer.alloc(16);
    cdb[0] = 0x9e;
    cdb[1] = 0x10;
    const alloc = this.pick([0, 4, 8, 12, 13, 16, 32, 32, 32, 64, 255]);
    cdb.writeUInt32BE(alloc, 10);
    let variant = `allocation length ${alloc}`;
    if (this.chance(0.08)) { cdb[1] = this.pick([0x11, 0x12, 0x13, 0x1f, 0x00]); variant = `service action ${cdb[1]!.toString(16)}h`; }
    if (this.chance(0.08)) { cdb[14] = 1; cdb.writeBigUInt64BE(BigInt(this.int(0, this.C + 5)), 2); variant += ', PMI 1 with an LBA'; }
    return this.finish({ name: 'READ CAPACITY(16)', variant, cdb, dir: alloc ? 'in' : 'none', len: alloc, xfer: alloc, cmp: 'data' }, [[1, 0xe0], [14, 0xfe]]);
  }

  private modeSense(): Cmd {
    const ten = this.chance(0.5);
    const cdb = Buffer.alloc(ten ? 10 : 6);
    cdb[0] = ten ? 0x5a : 0x1a;
    const page = this.pick([0x3f, 0x3f, 0x08, 0x08, 0x0a, 0x00, 0x01, 0x02, 0x1c, 0x03, 0x04, 0x05, 0x2a, 0x1a, this.int(0, 0x3e)]);
    const pc = this.pick([0, 0, 0, 1, 2, 3]);
    const dbd = this.chance(0.3);
    const llbaa = ten && this.chance(0.15);
    const sub = this.chance(0.9) ? 0 : this.pick([0xff, 0x01, 0x05]);
    cdb[1] = (dbd ? 0x08 : 0) | (llbaa ? 0x10 : 0);
    cdb[2] = (pc << 6) | page;
    cdb[3] = sub;
    const alloc = ten ? this.pick([0, 4, 8, 16, 24, 64, 255, 1024]) : this.pick([0, 2, 4, 12, 24, 64, 255]);
    if (ten) cdb.writeUInt16BE(alloc, 7); else cdb[4] = alloc;
    const variant = `page ${page.toString(16).padStart(2, '0')}h${sub ? `/${sub.toString(16)}h` : ''}, PC ${pc}${dbd ? ', DBD' : ''}${llbaa ? ', LLBAA' : ''}, allocation length ${alloc}`;
    return this.finish({ name: ten ? 'MODE SENSE(10)' : 'MODE SENSE(6)', variant, cdb, dir: alloc ? 'in' : 'none', len: alloc, xfer: alloc, cmp: ten ? 'mode10' : 'mode6' },
      ten ? [[1, 0xe7], [4, 0xff], [5, 0xff], [6, 0xff]] : [[1, 0xf7]]);
  }

  private tur(variant = 'plain'): Cmd {
    return this.finish({ name: 'TEST UNIT READY', variant, cdb: Buffer.alloc(6), dir: 'none', len: 0, xfer: 0, cmp: 'none' }, [[1, 0xff], [2, 0xff], [3, 0xff], [4, 0xff]]);
  }

  private requestSense(): Cmd {
    const cdb = Buffer.alloc(6);
    cdb[0] = 0x03;
    const desc = this.chance(0.3);
    cdb[1] = desc ? 1 : 0;
    const alloc = this.pick([0, 8, 18, 18, 32, 96, 252, 255]);
    cdb[4] = alloc;
    return this.finish({ name: 'REQUEST SENSE', variant: `${desc ? 'descriptor' : 'fixed'}, allocation length ${alloc}`, cdb, dir: alloc ? 'in' : 'none', len: alloc, xfer: alloc, cmp: 'sense' }, [[1, 0xfe], [2, 0xff], [3, 0xff]]);
  }

  private startStop(start: boolean, variant?: string): Cmd {
    const cdb = Buffer.alloc(6);
    cdb[0] = 0x1b;
    if (this.chance(0.3)) cdb[1] = 1; // IMMED
    cdb[4] = start ? 1 : 0;
    return this.finish({ name: 'START STOP UNIT', variant: variant ?? `${start ? 'START' : 'STOP'}${cdb[1] ? ', IMMED' : ''}`, cdb, dir: 'none', len: 0, xfer: 0, cmp: 'none' }, [[1, 0xfe], [2, 0xff]]);
  }

  private syncCache(): Cmd {
    const cdb = Buffer.alloc(10);
    cdb[0] = 0x35;
    const r = this.r();
    let variant = 'whole medium';
    if (r < 0.35) { const n = this.int(1, 64); cdb.writeUInt32BE(this.int(0, this.C - n), 2); cdb.writeUInt16BE(n, 7); variant = 'a range in the medium'; }
    else if (r < 0.5) { cdb.writeUInt32BE(this.C - this.int(0, 4), 2); cdb.writeUInt16BE(this.int(5, 50), 7); variant = 'a range crossing the end'; }
    else if (r < 0.6) { cdb.writeUInt32BE(this.pick([this.C, this.C + 1, 0xffffffff]), 2); variant = 'LBA past the end, to the end of the medium'; }
    if (this.chance(0.3)) { cdb[1] = 0x02; variant += ', IMMED'; }
    return this.finish({ name: 'SYNCHRONIZE CACHE(10)', variant, cdb, dir: 'none', len: 0, xfer: 0, cmp: 'none' }, [[1, 0xf8], [6, 0xc0]]);
  }

  private reportLuns(): Cmd {
    const cdb = Buffer.alloc(12);
    cdb[0] = 0xa0;
    cdb[2] = this.pick([0, 0, 0, 1, 2, 0x10, 0x11, 0x12, 3, 0xff]);
    const alloc = this.pick([0, 4, 8, 15, 16, 16, 24, 256, 1024]);
    cdb.writeUInt32BE(alloc, 6);
    return this.finish({ name: 'REPORT LUNS', variant: `SELECT REPORT ${cdb[2]!.toString(16)}h, allocation length ${alloc}`, cdb, dir: alloc ? 'in' : 'none', len: alloc, xfer: alloc, cmp: 'data' }, [[1, 0xff], [3, 0xff], [4, 0xff], [5, 0xff], [10, 0xff]]);
  }

  private rsoc(): Cmd {
    const cdb = Buffer.alloc(12);
    cdb[0] = 0xa3;
    cdb[1] = 0x0c;
    const options = this.pick([0, 0, 1, 1, 1, 2, 2, 3, 4, 7]);
    const rctd = this.chance(0.2);
    cdb[2] = options | (rctd ? 0x80 : 0);
    let variant = `reporting options ${options}${rctd ? ', RCTD' : ''}`;
    if (options >= 1 && options <= 3) {
      const op = this.pick([...COMMON_OPCODES, 0x9e, 0xa3, 0xab, 0x2e, 0xaf, 0x41, 0x93, 0x42, 0xd9, ...INVALID_OPCODES.slice(0, 6)]);
      cdb[3] = op;
      if (op === 0x9e) cdb.writeUInt16BE(this.pick([0x10, 0x12, 0x00]), 4);
      if (op === 0xa3) cdb.writeUInt16BE(this.pick([0x0c, 0x0a, 0x05]), 4);
      if (op === 0xab) cdb.writeUInt16BE(0x01, 4);
      variant += `, opcode ${op.toString(16).padStart(2, '0')}h${cdb.readUInt16BE(4) ? `/${cdb.readUInt16BE(4).toString(16)}h` : ''}`;
    }
    const alloc = this.pick([0, 4, 8, 16, 20, 64, 512, 4096]);
    cdb.writeUInt32BE(alloc, 6);
    variant += `, allocation length ${alloc}`;
    return this.finish({ name: 'REPORT SUPPORTED OPERATION CODES', variant, cdb, dir: alloc ? 'in' : 'none', len: alloc, xfer: alloc, cmp: 'rsoc' }, [[2, 0x78], [10, 0xff]]);
  }

  private prevent(value?: number): Cmd {
    const cdb = Buffer.alloc(6);
    cdb[0] = 0x1e;
    cdb[4] = value ?? this.pick([0, 1, 1, 2, 3]);
    return this.finish({ name: 'PREVENT ALLOW MEDIUM REMOVAL', variant: `PREVENT ${cdb[4]}`, cdb, dir: 'none', len: 0, xfer: 0, cmp: 'none' }, [[1, 0xff], [2, 0xff], [3, 0xff], [4, 0xfc]]);
  }

  private rmsn(): Cmd {
    const cdb = Buffer.alloc(12);
    cdb[0] = 0xab;
    cdb[1] = 0x01;
    const alloc = this.pick([4, 16, 68]);
    cdb.writeUInt32BE(alloc, 6);
    return this.finish({ name: 'READ MEDIA SERIAL NUMBER', variant: `allocation length ${alloc}`, cdb, dir: 'in', len: alloc, xfer: alloc, cmp: 'none' });
  }

  private invalidOpcode(): Cmd {
    const op = this.pick(INVALID_OPCODES);
    const cdb = Buffer.alloc(GROUP_LEN(op));
    cdb[0] = op;
    return this.finish({ name: `opcode ${op.toString(16).padStart(2, '0')}h`, variant: 'implemented by neither', cdb, dir: 'none', len: 0, xfer: 0, cmp: 'none' });
  }

  next(): Cmd[] {
    const r = this.r() * 100;
    if (r < 4) return [this.rw('READ', 10)].concat(this.chance(0.5) ? [this.requestSense()] : [this.tur(), this.requestSense()]);
    if (r < 20) return [this.rw('READ', this.pick([10, 12, 16] as const))];
    if (r < 21.5) return [this.rw('READ', 6)];
    if (r < 35) return [this.rw('WRITE', this.pick([10, 12, 16] as const))];
    if (r < 36) return [this.rw('WRITE', 6)];
    if (r < 44) return [this.rw('VERIFY', this.pick([10, 12, 16] as const))];
    if (r < 48) return [this.rw('WRITE AND VERIFY', this.pick([10, 16] as const))];
    if (r < 58) return [this.inquiry()];
    if (r < 64) return [this.readCapacity()];
    if (r < 72) return [this.modeSense()];
    if (r < 76) return [this.tur()];
    if (r < 80) return [this.requestSense()];
    if (r < 81.5) {
      // STOP (no LoEj), then what a stopped unit answers, then START again: the state never leaks further.
      return [this.startStop(false), this.tur('after STOP (START 0 without LoEj)'), this.startStop(true)];
    }
    if (r < 82.5) {
      const cdb = Buffer.alloc(6);
      cdb[0] = 0x1b;
      cdb[4] = (this.pick([1, 2, 3, 7, 0xa, 0xb]) << 4) | 1;
      return [this.finish({ name: 'START STOP UNIT', variant: `power condition ${(cdb[4]! >> 4).toString(16)}h`, cdb, dir: 'none', len: 0, xfer: 0, cmp: 'none' }), this.tur('after a power condition'), this.startStop(true)];
    }
    if (r < 83) return [this.startStop(true)];
    if (r < 86) return [this.syncCache()];
    if (r < 89) return [this.reportLuns()];
    if (r < 92) return [this.rsoc()];
    if (r < 94) return [this.prevent(), this.prevent(0)];
    if (r < 95) return [this.rmsn()];
    return [this.invalidOpcode()];
  }
}

// ------------------------------------------------------------------------------------------------ answers

export interface Answer {
  status: number;
  host: number;
  key?: number;
  asc?: number;
  ascq?: number;
  resid: number;
  /** The whole buffer after the command (data-in), for the comparison. */
  data?: Buffer;
  /** A transport-level failure (errno), instead of an answer. */
  err?: string;
  us: number;
}

const tuple = (a: Answer) => a.err ? `error ${a.err}` : a.host ? `host ${a.host.toString(16).padStart(2, '0')}h` : a.status === 0 ? 'GOOD' : a.status === 2
  ? `CHECK ${(a.key ?? -1).toString(16)}/${(a.asc ?? 0).toString(16).padStart(2, '0')}/${(a.ascq ?? 0).toString(16).padStart(2, '0')}` : `status ${a.status.toString(16)}h`;
export const answerText = (a: Answer) => `${tuple(a)}${a.resid ? ` resid ${a.resid}` : ''}`;

async function send(t: Transport, c: Cmd, out: Buffer | undefined): Promise<Answer> {
  const data = c.dir === 'in' ? Buffer.alloc(c.len) : c.dir === 'out' ? Buffer.from(out!) : undefined;
  const t0 = performance.now();
  let r: ScsiResult;
  try {
    r = await t.execute({ cdb: c.cdb, direction: c.dir, ...(data ? { data } : {}), timeoutMs: 10_000 });
  } catch (e) {
    return { status: -1, host: -1, resid: 0, err: (e as { code?: string }).code ?? (e as Error).message, us: Math.round((performance.now() - t0) * 1000) };
  }
  const s = r.status === 2 ? parseSense(r.sense) : undefined;
  return {
    status: r.status, host: r.hostStatus, resid: r.residual, us: Math.round((performance.now() - t0) * 1000),
    ...(s ? { key: s.senseKey, asc: s.asc, ascq: s.ascq } : {}),
    ...(c.dir === 'in' ? { data } : {}),
  };
}

// ------------------------------------------------------------------------------------------------ comparison

export type Aspect = 'status' | 'residual' | 'data';
export interface Difference { aspect: Aspect; detail: string }

const good = (a: Answer) => !a.err && a.host === 0 && a.status === 0;

/** Bytes the device returned: the buffer less the residual. */
const returned = (c: Cmd, a: Answer) => Math.max(0, c.len - a.resid);

function senseFromData(b: Buffer): string {
  const s = parseSense(b);
  return s ? `${s.descriptorFormat ? 'desc' : 'fixed'} ${s.senseKey.toString(16)}/${s.asc.toString(16).padStart(2, '0')}/${s.ascq.toString(16).padStart(2, '0')}` : b.length ? `unparsable ${b.subarray(0, 8).toString('hex')}` : 'none';
}

/** The comparable view of a GOOD answer's returned bytes (undefined: nothing to compare). */
export function view(c: Cmd, bytes: Buffer): string | undefined {
  switch (c.cmp) {
    case 'none': return undefined;
    case 'data': return bytes.toString('hex');
    case 'inquiry': return bytes.length ? `pdt ${bytes[0]!.toString(16)} rmb ${(bytes[1] ?? 0) >> 7} addlen ${bytes[4] ?? '-'}` : 'empty';
    case 'vpd': return bytes.length ? `pdt ${bytes[0]!.toString(16)} page ${bytes[1]?.toString(16) ?? '-'}` : 'empty';
    // The mode data length follows the pages, which differ: not compared; the rest of the header and the block
    // descriptor are, as far as the allocation length let them through.
    case 'mode6': {
      const f = [bytes.length > 1 ? `medium ${bytes[1]!.toString(16)}` : '', bytes.length > 2 ? `wp ${bytes[2]! >> 7}` : '', bytes.length > 3 ? `bdlen ${bytes[3]}` : ''];
      if (bytes.length > 3) f.push(`bd ${bytes.subarray(4, 4 + bytes[3]!).toString('hex')}`);
      return f.filter(Boolean).join(' ');
    }
    case 'mode10': {
      const f = [bytes.length > 2 ? `medium ${bytes[2]!.toString(16)}` : '', bytes.length > 3 ? `wp ${bytes[3]! >> 7}` : '', bytes.length > 4 ? `longlba ${bytes[4]! & 1}` : '', bytes.length > 7 ? `bdlen ${bytes.readUInt16BE(6)}` : ''];
      if (bytes.length > 7) f.push(`bd ${bytes.subarray(8, 8 + bytes.readUInt16BE(6)).toString('hex')}`);
      return f.filter(Boolean).join(' ');
    }
    case 'sense': return senseFromData(bytes);
    case 'rsoc': {
      const op = c.cdb[3]!;
      const options = c.cdb[2]! & 7;
      if (options < 1 || options > 3 || !COMMON_OPCODES.includes(op) || bytes.length < 2) return undefined;
      return `support ${bytes[1]! & 7}`;
    }
  }
}

/** Answers whose length is the same on both sides by design: their residuals are compared. */
export const SAME_LENGTH: Compare[] = ['none', 'data', 'inquiry', 'sense'];

/**
 * How `mo` (or the in-process emulator) differs from `sd`. Data is compared over the bytes scsi_debug returned
 * (what the other side returned beyond them must be zero: QEMU's scsi-generic pads, see the residual row).
 */
export function differences(c: Cmd, sd: Answer, mo: Answer): Difference[] {
  const out: Difference[] = [];
  if (tuple(sd) !== tuple(mo)) out.push({ aspect: 'status', detail: `${tuple(sd)} | ${tuple(mo)}` });
  else if (good(sd)) {
    const sameLength = SAME_LENGTH.includes(c.cmp);
    // The residual is the length of the answer: compared where the answers are the same length by design (not
    // VPD pages, mode pages or the opcode list, whose contents legitimately differ, and so their lengths).
    if (sameLength && sd.resid !== mo.resid) out.push({ aspect: 'residual', detail: `resid ${sd.resid} | ${mo.resid}` });
    if (c.dir === 'in' && sd.data && mo.data && c.cmp !== 'none') {
      const n = returned(c, sd);
      const m = returned(c, mo);
      const k = Math.min(n, m);
      if (c.cmp === 'data') {
        // Every byte over scsi_debug's length; what the other side returned beyond it must be zeros (QEMU pads).
        const bad = !sd.data.subarray(0, k).equals(mo.data.subarray(0, k)) || m < n;
        let nonzero = -1;
        for (let i = n; i < m; i++) if (mo.data[i] !== 0) { nonzero = i; break; }
        if (bad || nonzero >= 0) {
          let at = 0;
          while (at < k && sd.data[at] === mo.data[at]) at++;
          out.push({ aspect: 'data', detail: `${n} and ${m} bytes, first difference at byte ${bad ? at : nonzero}: ${sd.data.subarray(at, at + 16).toString('hex')} | ${mo.data.subarray(at, at + 16).toString('hex')}` });
        }
      } else {
        const a = view(c, sd.data.subarray(0, n));
        const b = view(c, mo.data.subarray(0, sameLength ? k : m));
        const tail = sameLength && m > n && mo.data.subarray(n, m).some((x) => x !== 0);
        if (a !== undefined && (a !== b || tail)) out.push({ aspect: 'data', detail: `${a} | ${b ?? '-'}${tail ? ` + ${m - n} non-zero bytes` : ''}` });
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ deliberate differences

export interface Context {
  c: Cmd;
  sd: Answer;
  mo: Answer;
  /** The previous command and the MO's answer to it. */
  prev?: { c: Cmd; mo: Answer; sd: Answer };
  diffs: Difference[];
  geometry: { blocks: number; blockSize: number };
}

export interface Row {
  id: string;
  /** Which command(s). */
  command: string;
  /** What scsi_debug answers / what the served MO answers. */
  sd: string;
  mo: string;
  /** Why the difference stays (and whose it is: scsi_debug's, QEMU's path, the MO model's). */
  why: string;
  /** The aspects of this command's differences the row explains (empty: none). */
  explains(x: Context): Aspect[];
}

const op = (x: Context) => x.c.cdb[0]!;
const isCheck = (a: Answer | undefined, key: number, asc: number, ascq?: number) => !!a && !a.err && a.host === 0 && a.status === 2 && a.key === key && a.asc === asc && (ascq === undefined || a.ascq === ascq);
const all = (x: Context): Aspect[] => x.diffs.map((d) => d.aspect);
/** The sense key in REQUEST SENSE data: fixed format (70h/71h) byte 2, descriptor format (72h/73h) byte 1. */
const senseKeyIn = (d: Buffer | undefined): number | undefined => {
  if (!d || d.length < 3) return undefined;
  const rc = d[0]! & 0x7f;
  return rc === 0x70 || rc === 0x71 ? d[2]! & 0x0f : rc === 0x72 || rc === 0x73 ? d[1]! & 0x0f : undefined;
};
const isRw = (o: number) => [0x08, 0x28, 0xa8, 0x88, 0x0a, 0x2a, 0xaa, 0x8a, 0x2f, 0xaf, 0x8f, 0x2e, 0xae, 0x8e].includes(o);
const lbaOf = (c: Cmd): bigint => c.cdb.length === 16 ? c.cdb.readBigUInt64BE(2) : c.cdb.length === 6 ? BigInt(c.cdb.readUIntBE(1, 3) & 0x1fffff) : BigInt(c.cdb.readUInt32BE(2));
const tlOf = (c: Cmd): number => c.cdb.length === 16 ? c.cdb.readUInt32BE(10) : c.cdb.length === 12 ? c.cdb.readUInt32BE(6) : c.cdb.length === 10 ? c.cdb.readUInt16BE(7) : (c.cdb[4] || 256);

/**
 * The documented deliberate differences (docs/hil-crosscheck.md, "Differential run"). Order matters: the first
 * row explaining a command's status difference is the one it is counted under.
 */
export const DELIBERATE: Row[] = [
  // -- what QEMU and the iSCSI path do (not the emulator: the in-process column shows its own answer)
  {
    id: 'qemu-residual',
    command: 'data-in commands answered with fewer bytes than the buffer',
    sd: 'GOOD with the residual',
    mo: 'GOOD, residual 0, the rest of the buffer zero',
    why: 'QEMU\'s iSCSI SG_IO path never reports a residual (block/iscsi.c iscsi_aio_ioctl_cb sets resid = 0) and its scsi-generic zero-fills the buffer it hands back, although libiscsi received the target\'s underflow. The row applies where the bytes match over scsi_debug\'s length and the rest of the buffer is zeros; the in-process column shows the emulator\'s own residual.',
    // The bytes match over scsi_debug's length and the rest is zeros (differences() checks both): QEMU's padding.
    explains: (x) => x.diffs.some((d) => d.aspect === 'residual') && !x.diffs.some((d) => d.aspect === 'data') && x.mo.resid === 0 && x.sd.resid > 0 ? ['residual'] : [],
  },
  {
    id: 'qemu-report-luns',
    command: 'REPORT LUNS',
    sd: 'any allocation length ≥ 4; SELECT REPORT 1/2 list its REPORT LUNS well-known LU',
    mo: 'answered by QEMU: allocation length < 16 -> 05/24/00; no well-known LU',
    why: 'QEMU answers REPORT LUNS itself for every device on its bus (hw/scsi/scsi-bus.c, scsi_target_emulate_report_luns); the command never reaches the iSCSI target.',
    explains: (x) => op(x) === 0xa0 ? all(x) : [],
  },
  {
    id: 'qemu-request-sense',
    command: 'REQUEST SENSE right after a command that ended in CHECK CONDITION',
    sd: 'NO SENSE (the sense went with the CHECK CONDITION: autosense)',
    mo: 'the previous command\'s sense, from QEMU',
    why: 'QEMU keeps the sense of a device\'s last CHECK CONDITION and answers the next REQUEST SENSE itself (scsi-bus.c: reqops_target_command while dev->sense_len); the command does not reach the iSCSI target.',
    explains: (x) => op(x) === 0x03 && !!x.prev && x.prev.mo.status === 2 && x.diffs.every((d) => d.aspect === 'data' || d.aspect === 'residual') ? all(x) : [],
  },
  {
    id: 'qemu-request-sense-twice',
    command: 'REQUEST SENSE right after a REQUEST SENSE that QEMU answered itself',
    sd: 'NO SENSE (its own REQUEST SENSE ended the sense)',
    mo: 'the sense of the CHECK CONDITION before both',
    why: 'QEMU answered the first REQUEST SENSE itself (row qemu-request-sense), so the emulator never saw it and still holds the sense of its last CHECK CONDITION for the next REQUEST SENSE; the in-process column, without QEMU, answers NO SENSE as scsi_debug does.',
    explains: (x) => op(x) === 0x03 && !!x.prev && x.prev.c.cdb[0] === 0x03 && x.diffs.every((d) => d.aspect === 'data' || d.aspect === 'residual') ? all(x) : [],
  },
  {
    id: 'qemu-stale-sense',
    command: 'REQUEST SENSE right after a REPORT LUNS (which QEMU answers itself), the window before it holding a CHECK CONDITION',
    sd: 'NO SENSE',
    mo: 'the sense key of an earlier CHECK CONDITION (fixed format; the 8 bytes asked for end before its ASC)',
    why: 'QEMU clears a device\'s kept sense when it issues the device\'s next command and keeps the sense of a CHECK CONDITION when it completes (row qemu-request-sense). With commands in flight together, a CHECK CONDITION that completes after a later command was issued leaves its sense kept; the REPORT LUNS that follows is QEMU\'s own (row qemu-report-luns) and does not clear it, so QEMU answers the REQUEST SENSE from it. Whether it happens depends on the order QEMU completes the window in: seen once in 5 runs of seed 20261110 (#6287 after #6284 ended 05/21/00), never in-process.',
    explains: (x) => op(x) === 0x03 && !!x.prev && x.prev.c.cdb[0] === 0xa0 && x.sd.status === 0 && x.mo.status === 0
      && senseKeyIn(x.sd.data) === 0 && (senseKeyIn(x.mo.data) ?? 0) !== 0
      && x.diffs.every((d) => d.aspect === 'data' || d.aspect === 'residual') ? all(x) : [],
  },
  {
    id: 'iscsi-edtl',
    command: 'a write whose CDB moves more than the buffer given (a huge transfer length)',
    sd: 'checks the CDB (05/21/00 for the range)',
    mo: '05/0E/03 INVALID FIELD IN INFORMATION UNIT',
    why: 'For a scsi-generic device QEMU\'s virtio-scsi takes the transfer length from the guest\'s request, not from the CDB (virtio_scsi_parse_cdb), so the iSCSI expected data transfer length is the buffer\'s; mocopy\'s target refuses a write whose CDB transfer differs from it before the drive sees it (docs/iscsi.md, "Tasks"). scsi_debug has no transport in front of it; the in-process emulator answers like scsi_debug.',
    explains: (x) => x.c.dir === 'out' && x.c.len !== cdbOutBytes(x.c, x.geometry.blockSize) && isCheck(x.mo, 5, 0x0e, 0x03) ? all(x) : [],
  },
  // -- what the MO model has and scsi_debug has not (or the other way round)
  {
    id: 'rmsn',
    command: 'READ MEDIA SERIAL NUMBER',
    sd: '05/20/00 (not implemented)',
    mo: 'GOOD: the disc\'s medium ID',
    why: 'scsi_debug has no medium serial number; the emulated MO drive serves the medium ID from the disc\'s non-rewritable zone, the command the copy protocol rests on.',
    explains: (x) => op(x) === 0xab ? all(x) : [],
  },
  {
    id: 'write-and-verify',
    command: 'WRITE AND VERIFY(10/16)',
    sd: '05/20/00 (not implemented)',
    mo: 'writes and verifies (SBC-4 5.45/5.47)',
    why: 'scsi_debug 6.1 implements no WRITE AND VERIFY; the emulator does. The rig writes the blocks back on every side afterwards, so the media stay equal.',
    explains: (x) => (op(x) === 0x2e || op(x) === 0x8e) && isCheck(x.sd, 5, 0x20) ? all(x) : [],
  },
  {
    id: 'verify-12',
    command: 'VERIFY(12)',
    sd: '05/20/00 (not implemented)',
    mo: 'verifies like VERIFY(10/16)',
    why: 'scsi_debug 6.1 implements VERIFY(10) and VERIFY(16) only.',
    explains: (x) => op(x) === 0xaf && isCheck(x.sd, 5, 0x20) ? all(x) : [],
  },
  {
    id: 'get-lba-status',
    command: 'SERVICE ACTION IN(16) 12h (GET LBA STATUS)',
    sd: 'GOOD: every block mapped',
    mo: '05/24/00',
    why: 'scsi_debug implements GET LBA STATUS; an MO disc has a fixed user area and no thin provisioning, and the emulator implements none of it (docs/iscsi.md, the conformance skips).',
    explains: (x) => op(x) === 0x9e && (x.c.cdb[1]! & 0x1f) === 0x12 ? all(x) : [],
  },
  {
    id: 'vpd-b0',
    command: 'INQUIRY VPD B0h (Block Limits)',
    sd: '05/24/00: it offers the page for disks (PDT 0/14h) only',
    mo: 'GOOD: the Block Limits page',
    why: 'The MO drive (PDT 7) is an SBC-4 device, for which SBC-4 6.6.4 defines the page, and it reports its maximum transfer length there.',
    explains: (x) => op(x) === 0x12 && (x.c.cdb[1]! & 1) === 1 && x.c.cdb[2] === 0xb0 ? all(x) : [],
  },
  {
    id: 'mode-pages',
    command: 'MODE SENSE(6/10) of a page only one of them has',
    sd: 'serves 01h, 02h, 0Ah, 1Ch (08h caching only for disks)',
    mo: 'serves 08h (caching) and 0Ah (control); 05/24/00 for the others',
    why: 'Each device reports its own mode pages; the MO model has the caching page (WCE: it has a write cache) and the control page.',
    explains: (x) => (op(x) === 0x1a || op(x) === 0x5a) && ![0x0a, 0x3f, 0x00].includes(x.c.cdb[2]! & 0x3f) && (isCheck(x.mo, 5, 0x24) || isCheck(x.sd, 5, 0x24)) ? all(x) : [],
  },
  {
    id: 'mode-page-0',
    command: 'MODE SENSE(6/10) of page 00h',
    sd: '05/24/00',
    mo: 'GOOD: the header and the block descriptor, no page',
    why: 'Page 00h is vendor specific (SPC-4 7.5.1). The MO model answers it with the header and block descriptor only, as SCSI-2-era drives (MO drives among them) do for hosts that read the block length that way; scsi_debug has no page 00h.',
    explains: (x) => (op(x) === 0x1a || op(x) === 0x5a) && (x.c.cdb[2]! & 0x3f) === 0 && isCheck(x.sd, 5, 0x24) ? all(x) : [],
  },
  {
    id: 'mode-block-descriptor',
    command: 'MODE SENSE(6/10) without DBD',
    sd: 'no block descriptor (it returns one for disks only)',
    mo: 'the short-LBA block descriptor: 2048 blocks of 2048 bytes',
    why: 'SBC-4 6.3.2 defines the block descriptor for every SBC device, and MO drives return it (older hosts learn the block length from it); scsi_debug returns it for PDT 0/14h only.',
    explains: (x) => (op(x) === 0x1a || op(x) === 0x5a) && good(x.sd) && good(x.mo) && !(x.c.cdb[1]! & 0x08) && x.diffs.every((d) => d.aspect === 'data') ? all(x) : [],
  },
  {
    id: 'power-condition',
    command: 'START STOP UNIT with a POWER CONDITION',
    sd: '05/24/00 (no power conditions)',
    mo: 'GOOD: accepted; power is not modelled',
    why: 'SBC-4 5.25 lets a device refuse power conditions it does not support, and lets it accept them; the emulator accepts them (docs/iscsi.md: "power conditions in START STOP UNIT (accepted, nothing moves)").',
    explains: (x) => op(x) === 0x1b && (x.c.cdb[4]! & 0xf0) !== 0 ? all(x) : [],
  },
  {
    id: 'rsoc-opcode-sets',
    command: 'REPORT SUPPORTED OPERATION CODES for one command only one of them implements',
    sd: 'its own answer (supported / not supported / 05/24/00 for the wrong reporting option)',
    mo: 'its own answer',
    why: 'The supported-opcode lists differ by design (the rows above); for an opcode one side has, with service actions or not, the reporting options 1/2 check and the SUPPORT field differ with it.',
    explains: (x) => op(x) === 0xa3 && [1, 2, 3].includes(x.c.cdb[2]! & 7) && !COMMON_OPCODES.includes(x.c.cdb[3]!) && (x.c.cdb[2]! & 7) !== 3 ? all(x) : [],
  },
  // -- where scsi_debug departs from SPC-4/SBC-4 and the emulator does not
  {
    id: 'rsoc-allocation',
    command: 'REPORT SUPPORTED OPERATION CODES with an allocation length below 4',
    sd: '05/24/00',
    mo: 'GOOD: the bytes that fit (none for 0)',
    why: 'SPC-4 4.2.5.6: an allocation length too small for the answer is not an error (0 means no data). scsi_debug refuses anything under 4.',
    explains: (x) => op(x) === 0xa3 && x.c.cdb.readUInt32BE(6) < 4 && isCheck(x.sd, 5, 0x24) ? all(x) : [],
  },
  {
    id: 'inquiry-page-code',
    command: 'INQUIRY with EVPD 0 and a PAGE CODE',
    sd: 'GOOD: standard data (ignores the page code)',
    mo: '05/24/00',
    why: 'SPC-4 6.6.1: "If the EVPD bit is set to zero and the PAGE CODE field is not set to zero, the device server shall terminate the command with ... INVALID FIELD IN CDB." scsi_debug does not check.',
    explains: (x) => op(x) === 0x12 && !(x.c.cdb[1]! & 3) && x.c.cdb[2] !== 0 && good(x.sd) && isCheck(x.mo, 5, 0x24) ? all(x) : [],
  },
  {
    id: 'protect-field',
    command: 'READ/WRITE/VERIFY with RDPROTECT/WRPROTECT/VRPROTECT ≠ 0',
    sd: 'ignores the field (no protection information configured)',
    mo: '05/24/00',
    why: 'Neither has protection information (INQUIRY PROTECT = 0), and SBC-4 4.22.2 makes a non-zero protect field INVALID FIELD IN CDB then; scsi_debug looks at it only when configured with DIF.',
    explains: (x) => isRw(op(x)) && x.c.cdb.length > 6 && (x.c.cdb[1]! & 0xe0) !== 0 && isCheck(x.mo, 5, 0x24) && !x.sd.err ? all(x) : [],
  },
  {
    id: 'verify-no-range-check',
    command: 'VERIFY(10/16) with BYTCHK 0, or a VERIFICATION LENGTH of 0, past the end',
    sd: 'GOOD: it returns before checking the range ("always claim internal verify okay"; "not an error")',
    mo: '05/21/00',
    why: 'SBC-4 4.5/5.33: a range past the capacity is LOGICAL BLOCK ADDRESS OUT OF RANGE whatever BYTCHK says, and an LBA past the capacity is out of range with a length of 0 too (scsi_debug itself answers so for READ and WRITE).',
    explains: (x) => [0x2f, 0x8f].includes(op(x)) && (((x.c.cdb[1]! >> 1) & 3) === 0 || tlOf(x.c) === 0) && good(x.sd) && isCheck(x.mo, 5, 0x21) ? all(x) : [],
  },
  {
    id: 'verify-bytchk3-range',
    command: 'VERIFY(10/16) with BYTCHK 3 and a range past the end',
    sd: 'MISCOMPARE 0E/1D/00, or 05/55/03 for a huge length: it range-checks one block only, then compares the whole range (wrapping at the end of its store)',
    mo: '05/21/00',
    why: 'SBC-4 5.33: the verification range is the whole VERIFICATION LENGTH whatever BYTCHK; past the capacity it is LOGICAL BLOCK ADDRESS OUT OF RANGE. scsi_debug checks lba + 1 for BYTCHK 11b.',
    explains: (x) => [0x2f, 0x8f].includes(op(x)) && ((x.c.cdb[1]! >> 1) & 3) === 3 && lbaOf(x.c) + BigInt(tlOf(x.c)) > BigInt(x.geometry.blocks) && isCheck(x.mo, 5, 0x21) && (isCheck(x.sd, 0xe, 0x1d) || isCheck(x.sd, 5, 0x55)) ? all(x) : [],
  },
  {
    id: 'lba-wrap',
    command: 'READ(16) with an LBA within a few blocks of 2^64',
    sd: 'GOOD: lba + length wraps to a small number; it reads block lba mod capacity',
    mo: '05/21/00',
    why: 'scsi_debug\'s range check (lba + num > capacity) overflows for LBAs near 2^64; SBC-4 makes the range out of range. The generator sends such LBAs only to commands that do not write.',
    explains: (x) => op(x) === 0x88 && lbaOf(x.c) + BigInt(tlOf(x.c)) > 0xffffffffffffffffn && isCheck(x.mo, 5, 0x21) ? all(x) : [],
  },
  {
    id: 'stopped-state',
    command: 'commands after START STOP UNIT with START 0 and LOEJ 0 (a stop without eject)',
    sd: '02/04/02 (INITIALIZING COMMAND REQUIRED) until a START',
    mo: 'answers as before: the stop is accepted, nothing spins down',
    why: 'libiscsi\'s conformance test StartStopUnit.NoLoej (docs/iscsi.md) requires TEST UNIT READY to be GOOD after such a stop on a removable LUN, and the emulator follows the suite; SBC-4 5.25\'s stopped state would answer 02/04/02 as scsi_debug does.',
    explains: (x) => isCheck(x.sd, 2, 0x04, 0x02) ? all(x) : [],
  },
  // -- where either answer is within a standard
  {
    id: 'rc10-pmi',
    command: 'READ CAPACITY(10) with PMI 0 and an LBA',
    sd: 'GOOD (ignores the LBA)',
    mo: '05/24/00',
    why: 'SBC-3 requires INVALID FIELD IN CDB here; SBC-4 made PMI and the LBA field obsolete. The emulator keeps the SBC-3 check.',
    explains: (x) => op(x) === 0x25 && !(x.c.cdb[8]! & 1) && x.c.cdb.readUInt32BE(2) !== 0 ? all(x) : [],
  },
];

/** Data-out bytes the CDB itself calls for (SBC-4), for the data-out commands the generator makes. */
export function cdbOutBytes(c: Cmd, bs: number): number {
  const o = c.cdb[0]!;
  if ([0x2f, 0xaf, 0x8f].includes(o)) {
    const bytchk = (c.cdb[1]! >> 1) & 3;
    return bytchk === 1 ? tlOf(c) * bs : bytchk === 3 ? bs : 0;
  }
  return isRw(o) ? tlOf(c) * bs : c.len;
}

// ------------------------------------------------------------------------------------------------ the run

export interface DiffConfig {
  sd: string;
  mo: string;
  seed: number;
  count: number;
  /** Examples kept per unexplained group / deliberate row. */
  examples?: number;
  /** Commands that do not change state run this many at a time (default 8; 1: strictly one after the other). */
  window?: number;
}

export interface Example { n: number; name: string; variant: string; cdb: string; sd: string; mo: string; diffs: string[] }

/** Seeded data-out bytes: an AES-128-CTR keystream keyed by the seed and the command's number (native: cheap under TCG). */
function fillRandom(seed: number, n: number, len: number): Buffer {
  const key = createHash('sha256').update(`${seed}/${n}`).digest();
  const c = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return c.update(Buffer.alloc(len));
}

/** The whole command sequence for a seed (it does not depend on the answers). */
export function sequence(seed: number, count: number, blocks: number, blockSize: number): Cmd[] {
  const gen = new Generator(seed, blocks, blockSize);
  const cmds: Cmd[] = [];
  while (cmds.length < count) cmds.push(...gen.next());
  cmds.length = count;
  return cmds;
}

/**
 * What the media should hold (every write scsi_debug took, in order), and the data-out bytes of each command: seeded
 * random for writes; for VERIFY with BYTCHK, the media as they are (matching), with a byte flipped, or their first block.
 */
export class Media {
  readonly model: Buffer;
  constructor(readonly seed: number, readonly blocks: number, readonly bs: number) {
    this.model = Buffer.alloc(blocks * bs);
  }
  out(c: Cmd, n: number): Buffer | undefined {
    if (c.dir !== 'out') return undefined;
    const lba = Number(lbaOf(c));
    const onMedia = (count: number) => {
      const b = Buffer.alloc(count * this.bs);
      if (lba < this.blocks) this.model.copy(b, 0, lba * this.bs, Math.min(this.model.length, (lba + count) * this.bs));
      return b;
    };
    switch (c.fill) {
      case 'model': return onMedia(c.len / this.bs);
      case 'model-first': return onMedia(1);
      case 'model-flip': { const b = onMedia(c.len / this.bs); const i = (n * 7919) % b.length; b[i] = b[i]! ^ 0x5a; return b; }
      default: return fillRandom(this.seed, n, c.len);
    }
  }
  /** A write scsi_debug took changes the model. */
  took(c: Cmd, buf: Buffer | undefined): void {
    if (c.writes && buf && c.fill === 'random') buf.copy(this.model, c.writes.lba * this.bs, 0, Math.min(buf.length, c.writes.blocks * this.bs));
  }
  /** WRITE(10)s that put `blocks` blocks from `lba` back as the model says. */
  rewrite(lba: number, blocks: number): Array<{ cdb: Buffer; data: Buffer }> {
    const out: Array<{ cdb: Buffer; data: Buffer }> = [];
    for (let at = lba; at < lba + blocks; at += 16) {
      const n = Math.min(16, lba + blocks - at);
      const cdb = Buffer.from([0x2a, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
      cdb.writeUInt32BE(at, 2);
      cdb.writeUInt16BE(n, 7);
      out.push({ cdb, data: Buffer.from(this.model.subarray(at * this.bs, (at + n) * this.bs)) });
    }
    return out;
  }
  sha256(): string {
    return createHash('sha256').update(this.model).digest('hex');
  }
}

function emit(line: unknown): void {
  process.stdout.write(JSON.stringify(line) + '\n');
}
function data(kind: string, body: Record<string, unknown>): void {
  process.stdout.write(`@@MOCOPY-DATA ${JSON.stringify({ kind, ...body })}\n`);
}

async function capacity(t: Transport): Promise<{ blocks: number; blockSize: number }> {
  const b = Buffer.alloc(8);
  for (let i = 0; i < 5; i++) {
    // A fresh device may still have a unit attention to give.
    const r = await t.execute({ cdb: Buffer.from([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]), direction: 'in', data: b, timeoutMs: 10_000 });
    if (r.status === 0 && r.hostStatus === 0) return { blocks: b.readUInt32BE(0) + 1, blockSize: b.readUInt32BE(4) };
  }
  throw new Error(`${t.path}: READ CAPACITY failed`);
}

/** One TEST UNIT READY at a time, 200 of them: milliseconds each. */
async function turMs(t: Transport): Promise<number> {
  const c0 = performance.now();
  for (let i = 0; i < 200; i++) await t.execute({ cdb: Buffer.alloc(6), direction: 'none', timeoutMs: 10_000 });
  return Number(((performance.now() - c0) / 200).toFixed(3));
}

/** Figures of a run (the guest prints them as a `differential` record). */
export interface DiffSummary {
  seed: number; commands: number; agreed: number; deliberate: number; unexplained: number; resyncs: number;
  mediaEqual: boolean; mismatched: string[]; modelSha256: string;
  geometry: { blocks: number; blockSize: number }; ms: number; turMs: Record<string, number>;
  byRow: Record<string, number>; byCommand: Record<string, number>;
  /** For every command that writes, in order: 1 if scsi_debug took it, + 2 if the served MO did (for the replay). */
  writes: string;
  window: number;
  /** Commands run alone (state changes, REQUEST SENSE and the command before it), and the time they took. */
  alone: number;
  aloneMs: number;
}

/** The guest's run: the sequence to scsi_debug and the served MO, every answer compared and classified. */
export async function runDifferential(cfg: DiffConfig): Promise<DiffSummary> {
  const t0 = performance.now();
  const sd = await openTransport(cfg.sd, { write: true });
  const mo = await openTransport(cfg.mo, { write: true });
  const geo = await capacity(sd);
  const moGeo = await capacity(mo);
  if (geo.blocks !== moGeo.blocks || geo.blockSize !== moGeo.blockSize) {
    throw new Error(`the two media differ: scsi_debug ${geo.blocks} x ${geo.blockSize}, MO ${moGeo.blocks} x ${moGeo.blockSize}`);
  }
  const latency: Record<string, number> = { sd: await turMs(sd), mo: await turMs(mo) };
  const bs = geo.blockSize;
  const media = new Media(cfg.seed, geo.blocks, bs);
  const keep = cfg.examples ?? 3;
  /** Per row and per unexplained group: the commands, both answers to each (status and residual), examples. */
  type Noted = { indices: number[]; sd: string[]; mo: string[]; examples: Example[] };
  const rows = new Map<string, Noted>();
  const groups = new Map<string, Noted>();
  let agreed = 0, deliberate = 0, unexplained = 0, resyncs = 0;
  const writeBits = new Map<number, number>();
  const byName = new Map<string, number>();
  const cmds = sequence(cfg.seed, cfg.count, geo.blocks, bs);
  const run0 = performance.now();

  const one = async (c: Cmd, n: number, prev: Context['prev']): Promise<{ mo: Answer; sd: Answer }> => {
    const buf = media.out(c, n);
    const [a, b] = await Promise.all([send(sd, c, buf), send(mo, c, buf)]);
    byName.set(c.name, (byName.get(c.name) ?? 0) + 1);
    const diffs = differences(c, a, b);
    const x: Context = { c, sd: a, mo: b, ...(prev ? { prev } : {}), diffs, geometry: geo };
    const shown = (y: Answer) => shownText(c, y);
    const ex = (): Example => ({ n, name: c.name, variant: c.variant, cdb: c.cdb.toString('hex'), sd: shown(a), mo: shown(b), diffs: diffs.map((d) => `${d.aspect}: ${d.detail}`) });
    const note = (m: Map<string, Noted>, key: string) => {
      const g = m.get(key) ?? { indices: [], sd: [], mo: [], examples: [] };
      g.indices.push(n);
      g.sd.push(shownText(c, a));
      g.mo.push(shownText(c, b));
      if (g.examples.length < keep) g.examples.push(ex());
      m.set(key, g);
    };
    if (diffs.length === 0) agreed++;
    else {
      const covered = new Set<Aspect>();
      let primary: string | undefined;
      for (const row of DELIBERATE) {
        const e = row.explains(x).filter((asp) => diffs.some((d) => d.aspect === asp));
        if (e.length && !primary) primary = row.id;
        for (const asp of e) covered.add(asp);
      }
      if (primary && diffs.every((d) => covered.has(d.aspect))) {
        deliberate++;
        note(rows, primary);
      } else {
        unexplained++;
        note(groups, signature(c, diffs.filter((d) => !covered.has(d.aspect))));
      }
    }
    // Media: a write scsi_debug took changes the model; if the sides did not all do the same, both are put back.
    if (c.writes) {
      const okSd = good(a), okMo = good(b);
      writeBits.set(n, (okSd ? 1 : 0) + (okMo ? 2 : 0));
      if (okSd) media.took(c, buf);
      if (okSd !== okMo) {
        for (const w of media.rewrite(c.writes.lba, c.writes.blocks)) {
          for (const t of [sd, mo]) await t.execute({ cdb: w.cdb, direction: 'out', data: Buffer.from(w.data), timeoutMs: 10_000 });
          resyncs++;
        }
      }
    }
    return { mo: b, sd: a };
  };

  // STOP/START, PREVENT, REQUEST SENSE and the command before it run alone, in order. The others run up to `window`
  // at a time, as long as no two of them touch the same blocks while one of them writes (a command waits for the
  // window to drain otherwise): their answers then do not depend on the order the devices take them in.
  const window = Math.max(1, cfg.window ?? 8);
  let inflight: Array<{ p: Promise<unknown>; range?: [number, number]; writes: boolean }> = [];
  const drain = async () => { await Promise.all(inflight.map((f) => f.p)); inflight = []; };
  let prev: Context['prev'];
  let alone = 0, aloneMs = 0;
  for (let n = 0; n < cmds.length; n++) {
    const c = cmds[n]!;
    if (isBarrier(c, cmds[n + 1])) {
      await drain();
      const b0 = performance.now();
      prev = { c, ...(await one(c, n, prev)) };
      alone++;
      aloneMs += performance.now() - b0;
      continue;
    }
    prev = undefined; // only REQUEST SENSE looks at the command before it, and that one runs alone
    const range = blocksTouched(c, geo.blocks);
    const writes = !!c.writes;
    const clash = range && inflight.some((f) => f.range && (writes || f.writes) && f.range[0] < range[1] && range[0] < f.range[1]);
    if (clash || inflight.length >= window) await drain();
    inflight.push({ p: one(c, n, undefined), ...(range ? { range } : {}), writes });
  }
  await Promise.all(inflight);
  const runMs = performance.now() - run0;
  latency.sdEnd = await turMs(sd);
  latency.moEnd = await turMs(mo);

  // The media at the end: every block of both sides against the model.
  let mediaEqual = true;
  const mismatched: string[] = [];
  for (const [name, t] of [['scsi_debug', sd], ['MO', mo]] as const) {
    for (let at = 0; at < geo.blocks; at += 32) {
      const cnt = Math.min(32, geo.blocks - at);
      const cdb = Buffer.from([0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
      cdb.writeUInt32BE(at, 2);
      cdb.writeUInt16BE(cnt, 7);
      const b = Buffer.alloc(cnt * bs);
      const r = await t.execute({ cdb, direction: 'in', data: b, timeoutMs: 10_000 });
      if (r.status !== 0 || r.hostStatus !== 0 || !b.equals(media.model.subarray(at * bs, (at + cnt) * bs))) {
        mediaEqual = false;
        mismatched.push(`${name} blocks ${at}-${at + cnt - 1}`);
        break;
      }
    }
  }
  await sd.close();
  await mo.close();

  const summary: DiffSummary = {
    seed: cfg.seed, commands: cmds.length, agreed, deliberate, unexplained, resyncs, mediaEqual, mismatched, modelSha256: media.sha256(),
    geometry: geo, ms: Math.round(runMs), turMs: latency,
    byRow: Object.fromEntries(DELIBERATE.map((r) => [r.id, rows.get(r.id)?.indices.length ?? 0])),
    byCommand: Object.fromEntries([...byName].sort((p, q) => q[1] - p[1])),
    writes: [...writeBits].sort((p, q) => p[0] - q[0]).map(([, v]) => String(v)).join(''), window, alone, aloneMs: Math.round(aloneMs),
  };
  data('differential', { ...summary, totalMs: Math.round(performance.now() - t0) });
  for (const [id, g] of rows) data('differential-row', { row: id, count: g.indices.length, ...g });
  for (const [sig, g] of [...groups].sort((p, q) => q[1].indices.length - p[1].indices.length)) data('differential-unexplained', { signature: sig, count: g.indices.length, ...g });
  return summary;
}

/**
 * How unexplained disagreements are grouped: the command, the kind of case (for VERIFY its BYTCHK, else the first
 * part of the variant, without the reserved bits and control bytes on top) and what differs (a data difference
 * implies the residual's).
 */
export function signature(c: Cmd, diffs: Difference[]): string {
  const verify = [0x2f, 0xaf, 0x8f].includes(c.cdb[0]!);
  const kind = verify ? `BYTCHK ${(c.cdb[1]! >> 1) & 3}${tlOf(c) === 0 ? ', zero length' : ''}` : c.variant.split(', ')[0]!.replace(/allocation length \d+/, 'any allocation length');
  const status = diffs.find((d) => d.aspect === 'status');
  const what = status ? status.detail : diffs.some((d) => d.aspect === 'data') ? 'the data' : diffs.map((d) => d.aspect).join('; ');
  return `${c.name} [${kind}]: ${what}`;
}

/** Which commands run alone: START STOP UNIT, PREVENT ALLOW, REQUEST SENSE, the command before a REQUEST SENSE. */
export function isBarrier(c: Cmd, next: Cmd | undefined): boolean {
  return [0x1b, 0x1e, 0x03].includes(c.cdb[0]!) || next?.cdb[0] === 0x03;
}

/**
 * The blocks a command may read or write, [from, to): a write's own range (none if it is out of range: nobody
 * takes it); for a read or verify past the end, the whole medium (scsi_debug wraps some of those around).
 */
export function blocksTouched(c: Cmd, blocks: number): [number, number] | undefined {
  if (!isRw(c.cdb[0]!)) return undefined;
  const lba = lbaOf(c);
  const tl = BigInt(tlOf(c));
  if (c.writes) return [c.writes.lba, c.writes.lba + c.writes.blocks];
  if ([0x0a, 0x2a, 0xaa, 0x8a, 0x2e, 0xae, 0x8e].includes(c.cdb[0]!)) return undefined;
  return lba + tl <= BigInt(blocks) ? [Number(lba), Number(lba + tl)] : [0, blocks];
}

/**
 * The host's replay (iscsi-host.ts): the same sequence, one command at a time, to the emulator in-process (no QEMU,
 * no iSCSI) on a fresh image of the same geometry, the media kept as the guest's run kept them (from `writes`).
 * Returns the answers to the commands in `want`, and the model's hash (equal to the guest's: a faithful replay).
 */
export async function replayInProcess(o: { seed: number; count: number; blocks: number; blockSize: number; writes: string; image: string }, want: Set<number>): Promise<{ answers: Map<number, Answer>; modelSha256: string; ms: number }> {
  const t0 = performance.now();
  createMoImage(o.image, { mediumId: Buffer.from('4c4f43414c', 'hex'), capacityBytes: o.blocks * o.blockSize, blockSize: o.blockSize as 512 | 2048, overwrite: true });
  const t = await openTransport(`emu-mo:${o.image}`);
  const media = new Media(o.seed, o.blocks, o.blockSize);
  const answers = new Map<number, Answer>();
  const cmds = sequence(o.seed, o.count, o.blocks, o.blockSize);
  let w = 0;
  try {
    for (let n = 0; n < cmds.length; n++) {
      const c = cmds[n]!;
      const buf = media.out(c, n);
      const a = await send(t, c, buf);
      if (want.has(n)) answers.set(n, a);
      if (c.writes) {
        const bits = Number(o.writes[w++] ?? 0);
        if (bits & 1) media.took(c, buf);
        if (good(a) !== !!(bits & 1) || !!(bits & 1) !== !!(bits & 2)) {
          for (const r of media.rewrite(c.writes.lba, c.writes.blocks)) await t.execute({ cdb: r.cdb, direction: 'out', data: r.data, timeoutMs: 10_000 });
        }
      }
    }
  } finally {
    await t.close();
  }
  return { answers, modelSha256: media.sha256(), ms: Math.round(performance.now() - t0) };
}

/**
 * An answer as the summary shows it: status, residual, and of GOOD data the comparable view (for READ-like data,
 * the first bytes of the SHA-256 of what was returned).
 */
export function shownText(c: Cmd, a: Answer): string {
  if (!good(a) || !a.data || c.cmp === 'none') return answerText(a);
  const bytes = a.data.subarray(0, returned(c, a));
  return `${answerText(a)} (${c.cmp === 'data' ? `${bytes.length} bytes #${createHash('sha256').update(bytes).digest('hex').slice(0, 8)}` : view(c, bytes) ?? ''})`;
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.env.MOCOPY_HIL_DIFF ?? '{}') as DiffConfig;
  const title = `differential: ${cfg.count} seeded CDBs (seed ${cfg.seed}) to scsi_debug and to the served MO, every answer compared`;
  const fullTitle = `differential ${title}`;
  const t0 = Date.now();
  try {
    const s = await runDifferential(cfg);
    const problems: string[] = [];
    if (s.unexplained) problems.push(`${s.unexplained} unexplained disagreement(s)`);
    if (!s.mediaEqual) problems.push(`media differ at the end (${s.mismatched.join(', ')})`);
    if (s.commands < cfg.count) problems.push(`only ${s.commands} of ${cfg.count} commands compared`);
    if (problems.length) emit(['fail', { title, fullTitle, duration: Date.now() - t0, err: problems.join('; ') }]);
    else emit(['pass', { title, fullTitle, duration: Date.now() - t0 }]);
  } catch (e) {
    emit(['fail', { title, fullTitle, duration: Date.now() - t0, err: (e as Error).stack ?? String(e) }]);
  }
}

if (process.argv[1] && /differential\.[jt]s$/.test(process.argv[1])) await main();
