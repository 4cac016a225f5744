/**
 * EmulatedDrive: a software SCSI target behind the Transport interface. It decodes the raw CDB
 * bytes and dispatches by opcode, one handler each (the shape of QEMU's scsi-disk.c), so every
 * layer above is exercised exactly as against a drive: there is no side door for data.
 */
import { performance } from 'node:perf_hooks';
import { Opcode, ServiceAction } from '../scsi/cdb.js';
import { buildFixedSense, SenseKey } from '../scsi/sense.js';
import { HostStatus, ScsiStatus, type ScsiCommand, type ScsiResult, type Transport, type TransportLimits } from '../scsi/transport.js';
import { validateCommand } from '../scsi/validate.js';
import { Faults, type FaultSpec } from './faults.js';
import { Medium, type CacheOptions, type MediumKind } from './medium.js';
import * as R from './responses.js';

export interface SpeedModel {
  /** Fixed cost of every command in milliseconds (seek + protocol). */
  latencyMs: number;
  readMBps: number;
  writeMBps: number;
}

/** A 640 MB-class MO drive: ~7 MB/s read, ~5 MB/s write. */
export const MO_SPEED: SpeedModel = { latencyMs: 2, readMBps: 7, writeMBps: 5 };
/** A 24x-class CD-ROM drive: ~3.6 MB/s. */
export const CD_SPEED: SpeedModel = { latencyMs: 2, readMBps: 3.6, writeMBps: 0 };

export interface DriveOptions {
  /** Force the drive type instead of reading it from the image. */
  kind?: MediumKind;
  faults?: FaultSpec[];
  seed?: number;
  /** Speed model; off (as fast as the image file allows) unless given. */
  speed?: SpeedModel | false;
  /** Largest transfer the emulated HBA accepts (default 1 MiB). */
  maxTransferBytes?: number;
  /** The drive's unit serial number (VPD 0x80). */
  driveSerial?: string;
  vendor?: string;
  product?: string;
  revision?: string;
  cache?: CacheOptions;
  /** Report POWER ON (29/00) on the first command, as a drive that nobody has talked to yet. Default false. */
  powerOnAttention?: boolean;
  /**
   * A scripted disc changer: each time the disc is ejected (START STOP UNIT with LoEj, or `eject()`), the next image
   * of the list is inserted after `delayMs` (default 200), with the unit attention 28/00 a real drive raises.
   */
  changer?: { images: string[]; delayMs?: number };
}

class CheckCondition {
  constructor(readonly sense: Buffer) {}
}

function check(key: number, asc: number, ascq: number, opts?: Parameters<typeof buildFixedSense>[3]): CheckCondition {
  return new CheckCondition(buildFixedSense(key, asc, ascq, opts));
}
const invalidField = (byte: number, bit?: number) =>
  check(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00, { fieldPointer: { commandData: true, field: byte, ...(bit !== undefined ? { bit } : {}) } });
const invalidOpcode = () => check(SenseKey.ILLEGAL_REQUEST, 0x20, 0x00, { fieldPointer: { commandData: true, field: 0 } });

/** The empty data buffer of a command without data, and the empty sense of a GOOD answer: one for all (zero bytes cannot be changed). */
const NO_BYTES = Buffer.alloc(0);

/** Big-endian 32-bit field of a CDB. */
function u32(b: Uint8Array, i: number): number {
  return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
}

function result(ctx: Ctx, t0: number, status: number, hostStatus: number, sense: Buffer): ScsiResult {
  return {
    status, hostStatus, driverStatus: 0, sense,
    residual: Math.max(0, ctx.data.length - ctx.moved),
    durationUs: Math.round((performance.now() - t0) * 1000),
  };
}

/** Host-side failure (data buffer too small for what the command moves). */
class HostFailure {
  constructor(readonly hostStatus: number) {}
}

interface Ctx {
  cdb: Uint8Array;
  cmd: ScsiCommand;
  data: Buffer;
  /** Bytes moved (for residual). */
  moved: number;
  /** Modelled medium bytes for the speed model. */
  mediumBytes: number;
  mediumWrite: boolean;
}

type Handler = (c: Ctx) => Promise<void> | void;

/** CDB length by opcode group (SPC-5 4.2.5.1). */
function groupLength(op: number): number {
  const g = op >> 5;
  return g === 0 ? 6 : g === 1 || g === 2 ? 10 : g === 4 ? 16 : g === 5 ? 12 : 6;
}

/** Commands that a pending UNIT ATTENTION does not interrupt (SAM-5 5.14). */
const UA_EXEMPT = new Set<number>([Opcode.INQUIRY, Opcode.REPORT_LUNS, Opcode.REQUEST_SENSE]);
/** Commands that work with no medium loaded. */
const NO_MEDIUM_OK = new Set<number>([
  Opcode.INQUIRY, Opcode.REPORT_LUNS, Opcode.REQUEST_SENSE, Opcode.START_STOP_UNIT, Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL,
  Opcode.GET_CONFIGURATION, Opcode.MAINTENANCE_IN,
]);

const WRITES = new Set<number>([Opcode.WRITE_6, Opcode.WRITE_10, Opcode.WRITE_12, Opcode.WRITE_16, Opcode.WRITE_AND_VERIFY_10, Opcode.WRITE_AND_VERIFY_12, Opcode.WRITE_AND_VERIFY_16]);

let driveCounter = 0;

export class EmulatedDrive implements Transport {
  readonly path: string;
  readonly limits: TransportLimits;
  readonly kind: MediumKind;
  readonly faults: Faults;
  private medium: Medium | undefined;
  /** Image of the last ejected disc, for START STOP UNIT LOEJ=1 START=1 (close the tray). */
  private trayImage: string | undefined;
  private pendingAttention: Buffer[] = [];
  private lastSense: Buffer | undefined;
  private prevented = false;
  private poweredOff = false;
  private closed = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** Commands a timeout fault holds unanswered. */
  private readonly hung = new Set<{ answer: () => void }>();
  /** Images the changer still has to insert, and its pending insertion. */
  private readonly changerQueue: string[];
  private changerTimer: NodeJS.Timeout | undefined;
  private readonly speed: SpeedModel | false;
  private readonly identity: R.Identity;
  private readonly cacheOptions: CacheOptions;
  private readonly handlers: Record<number, Handler>;
  /** Commands executed, by opcode name: lets tests of other projects assert on the traffic. */
  readonly stats = { commands: 0, reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, syncs: 0 };

  private constructor(path: string, medium: Medium, opts: DriveOptions) {
    this.path = path;
    this.medium = medium;
    this.kind = medium.info.kind;
    this.faults = new Faults(opts.seed ?? 1, opts.faults ?? []);
    this.speed = opts.speed ?? false;
    this.cacheOptions = opts.cache ?? {};
    this.changerQueue = [...(opts.changer?.images ?? [])];
    this.changerDelayMs = opts.changer?.delayMs ?? 200;
    const maxTransferBytes = opts.maxTransferBytes ?? 1 << 20;
    this.limits = { maxTransferBytes, alignment: 1 };
    const n = ++driveCounter;
    this.identity = {
      kind: this.kind,
      vendor: opts.vendor ?? 'MOCOPY',
      product: opts.product ?? (this.kind === 'mo' ? 'EMU MO DRIVE' : 'EMU CD-ROM'),
      revision: opts.revision ?? '0100',
      serial: opts.driveSerial ?? `EMU${this.kind.toUpperCase()}${String(process.pid % 100000).padStart(5, '0')}${String(n).padStart(3, '0')}`,
      maxTransferBlocks: Math.floor(maxTransferBytes / medium.info.blockSize),
    };
    if (opts.powerOnAttention) this.pendingAttention.push(buildFixedSense(SenseKey.UNIT_ATTENTION, 0x29, 0x00));
    this.handlers = this.buildHandlers();
  }

  /** Opens an image in a new drive. `kind` forces the drive type; otherwise the image decides. */
  static async open(imagePath: string, opts: DriveOptions = {}): Promise<EmulatedDrive> {
    const medium = await Medium.load(imagePath, opts.kind, opts.cache ?? {});
    return new EmulatedDrive(`emu:${imagePath}`, medium, opts);
  }

  /** The loaded disc, if any (for tests and tools; I/O still goes through CDBs). */
  get mediumInfo() {
    return this.medium?.info;
  }

  get isRemovalPrevented(): boolean {
    return this.prevented;
  }

  get dirtyBlocks(): number {
    return this.medium?.dirtyBlocks ?? 0;
  }

  execute(cmd: ScsiCommand): Promise<ScsiResult> {
    validateCommand(cmd);
    if (this.closed) return Promise.reject(new Error(`${this.path}: drive is closed`));
    const opcode = cmd.cdb[0]!;
    if (this.faults.takeTimeout(opcode)) {
      // The command never answers; like SG_IO, the transport gives up after the timeout (or when the drive closes).
      return new Promise((resolve) => {
        const answer = () => {
          this.hung.delete(hung);
          clearTimeout(timer);
          resolve({ status: 0, hostStatus: HostStatus.TIME_OUT, driverStatus: 0, sense: Buffer.alloc(0), residual: cmd.data?.length ?? 0, durationUs: Math.round(cmd.timeoutMs * 1000) });
        };
        const timer = setTimeout(answer, cmd.timeoutMs);
        const hung = { answer };
        this.hung.add(hung);
      });
    }
    const run = this.queue.then(() => this.run(cmd));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Runs one command. A handler that finishes synchronously (a READ from the page cache, TEST UNIT READY,
   * INQUIRY...) gives its answer synchronously, with no speed model: no promise of its own, no hop; only
   * commands that wait (writes, flushes, large reads, the speed model) go through promises.
   */
  private run(cmd: ScsiCommand): ScsiResult | Promise<ScsiResult> {
    const t0 = performance.now();
    const d: Uint8Array | undefined = cmd.data; // validateCommand lets any Uint8Array through
    const data = d ? (Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength)) : NO_BYTES;
    const ctx: Ctx = { cdb: cmd.cdb, cmd, data, moved: 0, mediumBytes: 0, mediumWrite: false };
    this.stats.commands++;
    let pending: Promise<void> | void;
    try {
      if (this.poweredOff) throw new HostFailure(HostStatus.NO_CONNECT);
      pending = this.dispatch(ctx);
    } catch (e) {
      return this.answer(ctx, t0, true, e);
    }
    if (pending) return pending.then(() => this.answer(ctx, t0, false, undefined), (e: unknown) => this.answer(ctx, t0, true, e));
    return this.answer(ctx, t0, false, undefined);
  }

  /** The answer to a command that ran (`failed`: it threw `error`), after the speed model's wait if there is one. */
  private answer(ctx: Ctx, t0: number, failed: boolean, error: unknown): ScsiResult | Promise<ScsiResult> {
    let status: number = ScsiStatus.GOOD;
    let hostStatus: number = HostStatus.OK;
    let sense: Buffer = NO_BYTES;
    if (!failed) {
      // The sense of an earlier CHECK CONDITION went out with it (autosense): a later GOOD command ends it, so a
      // REQUEST SENSE after that reports NO SENSE, not stale data (SPC-5 6.39).
      if (ctx.cdb[0] !== Opcode.REQUEST_SENSE) this.lastSense = undefined;
    } else if (error instanceof CheckCondition) {
      status = ScsiStatus.CHECK_CONDITION;
      sense = error.sense;
      this.lastSense = error.sense;
    } else if (error instanceof HostFailure) {
      hostStatus = error.hostStatus;
    } else {
      throw error;
    }
    if (this.speed) {
      const mbps = ctx.mediumWrite ? this.speed.writeMBps : this.speed.readMBps;
      const modelledMs = this.speed.latencyMs + (ctx.mediumBytes > 0 && mbps > 0 ? (ctx.mediumBytes / (mbps * 1e6)) * 1000 : 0);
      const left = modelledMs - (performance.now() - t0);
      if (left > 0.5) return new Promise((r) => setTimeout(r, left)).then(() => result(ctx, t0, status, hostStatus, sense));
    }
    return result(ctx, t0, status, hostStatus, sense);
  }

  private dispatch(c: Ctx): Promise<void> | void {
    const op = c.cdb[0]!;
    const handler = this.handlers[op];
    if (!handler) throw invalidOpcode();
    if (c.cdb.length < groupLength(op)) throw invalidField(c.cdb.length - 1);
    if (!UA_EXEMPT.has(op) && this.pendingAttention.length > 0) throw new CheckCondition(this.pendingAttention.shift()!);
    if (!NO_MEDIUM_OK.has(op)) {
      if (!this.medium) throw check(SenseKey.NOT_READY, 0x3a, 0x00);
      if (this.faults.takeNotReady()) throw check(SenseKey.NOT_READY, 0x04, 0x01);
    }
    return handler(c);
  }

  // ---- helpers -------------------------------------------------------------------------

  private requireMedium(): Medium {
    if (!this.medium) throw check(SenseKey.NOT_READY, 0x3a, 0x00);
    return this.medium;
  }

  /** Copies an answer into the data-in buffer, cut to the allocation length. */
  private reply(c: Ctx, bytes: Buffer, alloc: number): void {
    if (c.cmd.direction !== 'in') {
      if (alloc === 0) return;
      throw new HostFailure(HostStatus.ERROR);
    }
    const n = Math.min(bytes.length, alloc, c.data.length);
    bytes.copy(c.data, 0, 0, n);
    c.moved = n;
  }

  /** SBC-4: an LBA past the medium is out of range whatever the transfer length, zero included. */
  private rangeCheck(m: Medium, lba: number, blocks: number): void {
    if (lba + blocks > m.info.blockCount || lba > m.info.blockCount) {
      throw check(SenseKey.ILLEGAL_REQUEST, 0x21, 0x00);
    }
  }

  private decodeRw(c: Ctx): { lba: number; blocks: number; fua: boolean } {
    // Plain byte arithmetic on the CDB as given: no Buffer view per command. The CDB is at least its
    // group's length (checked in dispatch).
    const b = c.cdb;
    if (b[0] !== Opcode.READ_6 && b[0] !== Opcode.WRITE_6 && b[1]! & 0xe0) throw invalidField(1, 7); // RDPROTECT/WRPROTECT: no protection information here
    const fua = !!(b[1]! & 0x08);
    switch (b[0]) {
      case Opcode.READ_6: case Opcode.WRITE_6:
        // 21-bit LBA, no flags byte; a transfer length of 0 means 256 blocks (SBC-4 5.13).
        return { lba: ((b[1]! << 16) | (b[2]! << 8) | b[3]!) & 0x1fffff, blocks: b[4]! || 256, fua: false };
      case Opcode.READ_10: case Opcode.WRITE_10: case Opcode.VERIFY_10: case Opcode.WRITE_AND_VERIFY_10:
        return { lba: u32(b, 2), blocks: (b[7]! << 8) | b[8]!, fua };
      case Opcode.READ_12: case Opcode.WRITE_12: case Opcode.VERIFY_12: case Opcode.WRITE_AND_VERIFY_12:
        return { lba: u32(b, 2), blocks: u32(b, 6), fua };
      default: {
        const hi = u32(b, 2);
        // Above 2^53 - 1 (hi > 0x1fffff) the LBA is past any medium and not a safe integer.
        if (hi > 0x1fffff) throw check(SenseKey.ILLEGAL_REQUEST, 0x21, 0x00);
        return { lba: hi * 0x100000000 + u32(b, 6), blocks: u32(b, 10), fua };
      }
    }
  }

  /** READ(6/10/12/16): synchronous when the medium reads synchronously (up to 1 MiB), a promise otherwise. */
  private read(c: Ctx): Promise<void> | void {
    const m = this.requireMedium();
    const { lba, blocks } = this.decodeRw(c);
    this.rangeCheck(m, lba, blocks);
    if (blocks === 0) return;
    const bytes = blocks * m.info.blockSize;
    if (c.cmd.direction !== 'in' || c.data.length < bytes) throw new HostFailure(HostStatus.ERROR);
    if (bytes > this.limits.maxTransferBytes) throw new HostFailure(HostStatus.ERROR);
    const bad = this.faults.mediumError('read', lba, blocks);
    if (bad !== undefined) return this.readUpTo(c, m, lba, bad);
    if (m.readNow(lba, blocks, c.data, 0)) return this.readDone(c, bytes);
    return m.read(lba, blocks, c.data, 0).then(() => this.readDone(c, bytes));
  }

  /** A medium error at `bad`: the blocks before it are transferred, as a drive does when it stops at the error. */
  private async readUpTo(c: Ctx, m: Medium, lba: number, bad: number): Promise<void> {
    const good = bad - lba;
    if (good > 0) await m.read(lba, good, c.data, 0);
    c.moved = good * m.info.blockSize;
    throw check(SenseKey.MEDIUM_ERROR, 0x11, 0x00, { information: bad });
  }

  private readDone(c: Ctx, bytes: number): void {
    c.moved = bytes;
    const withheld = Math.min(bytes, this.faults.takeShortRead());
    if (withheld > 0) {
      // A lying drive: GOOD, but the tail never arrived; what the buffer holds there is stale.
      c.data.fill(0xa5, bytes - withheld, bytes);
      c.moved = bytes - withheld;
    }
    c.mediumBytes = bytes;
    this.stats.reads++;
    this.stats.bytesRead += bytes;
  }

  private async write(c: Ctx): Promise<void> {
    const m = this.requireMedium();
    const rw = this.decodeRw(c);
    const { lba, blocks } = rw;
    // WRITE AND VERIFY writes to the medium and checks it there (SBC-4 5.45): through the cache, like FUA.
    const verify = c.cdb[0] === Opcode.WRITE_AND_VERIFY_10 || c.cdb[0] === Opcode.WRITE_AND_VERIFY_12 || c.cdb[0] === Opcode.WRITE_AND_VERIFY_16;
    const fua = rw.fua || verify;
    if (m.info.kind === 'cd') throw check(SenseKey.DATA_PROTECT, 0x27, 0x00);
    this.rangeCheck(m, lba, blocks);
    if (blocks === 0) return;
    if (m.info.writeProtected) throw check(SenseKey.DATA_PROTECT, 0x27, 0x00);
    const bytes = blocks * m.info.blockSize;
    if (c.cmd.direction !== 'out' || c.data.length < bytes) throw new HostFailure(HostStatus.ERROR);
    if (bytes > this.limits.maxTransferBytes) throw new HostFailure(HostStatus.ERROR);
    const bad = this.faults.mediumError('write', lba, blocks);
    if (bad !== undefined) {
      const good = bad - lba;
      if (good > 0) await m.write(lba, c.data, good, fua);
      c.moved = good * m.info.blockSize;
      throw check(SenseKey.MEDIUM_ERROR, 0x0c, 0x00, { information: bad });
    }
    await m.write(lba, c.data, blocks, fua);
    c.moved = bytes;
    c.mediumBytes = bytes;
    c.mediumWrite = true;
    this.stats.writes++;
    this.stats.bytesWritten += bytes;
    if (this.faults.countWrite()) this.powerCut();
  }

  // ---- opcode handlers -----------------------------------------------------------------

  private buildHandlers(): Record<number, Handler> {
    const h: Record<number, Handler> = {};
    h[Opcode.TEST_UNIT_READY] = () => { this.requireMedium(); };
    h[Opcode.REQUEST_SENSE] = (c) => {
      const desc = !!(c.cdb[1]! & 0x01);
      let s = this.pendingAttention.shift() ?? this.lastSense ?? (this.medium ? buildFixedSense(0, 0, 0) : buildFixedSense(SenseKey.NOT_READY, 0x3a, 0));
      this.lastSense = undefined;
      if (desc) s = toDescriptorSense(s);
      this.reply(c, s, c.cdb[4]!);
    };
    h[Opcode.INQUIRY] = (c) => {
      const b = Buffer.from(c.cdb);
      if (b[1]! & 0x02) throw invalidField(1, 1); // CMDDT is obsolete
      const evpd = !!(b[1]! & 0x01);
      const alloc = b.readUInt16BE(3);
      if (!evpd) {
        if (b[2] !== 0) throw invalidField(2);
        return this.reply(c, R.standardInquiry(this.identity), alloc);
      }
      const page = R.vpdPage(this.identity, b[2]!);
      if (!page) throw invalidField(2);
      this.reply(c, page, alloc);
    };
    h[Opcode.READ_CAPACITY_10] = (c) => {
      const m = this.requireMedium();
      const b = Buffer.from(c.cdb);
      if (!(b[8]! & 1) && b.readUInt32BE(2) !== 0) throw invalidField(2);
      this.reply(c, R.readCapacity10Data(m.info.blockCount, m.info.blockSize), 8);
    };
    h[Opcode.SERVICE_ACTION_IN_16] = (c) => {
      const b = Buffer.from(c.cdb);
      if ((b[1]! & 0x1f) !== ServiceAction.READ_CAPACITY_16) throw invalidField(1, 4);
      const m = this.requireMedium();
      this.reply(c, R.readCapacity16Data(m.info.blockCount, m.info.blockSize), b.readUInt32BE(10));
    };
    h[Opcode.READ_6] = h[Opcode.READ_10] = h[Opcode.READ_12] = h[Opcode.READ_16] = (c) => this.read(c);
    h[Opcode.WRITE_6] = h[Opcode.WRITE_10] = h[Opcode.WRITE_12] = h[Opcode.WRITE_16] = (c) => this.write(c);
    h[Opcode.WRITE_AND_VERIFY_10] = h[Opcode.WRITE_AND_VERIFY_12] = h[Opcode.WRITE_AND_VERIFY_16] = (c) => this.write(c);
    // PRE-FETCH(10/16): the range is checked; the emulated cache has nothing to gain from reading ahead.
    h[0x34] = h[0x90] = (c) => {
      const m = this.requireMedium();
      const b = Buffer.from(c.cdb);
      const [lba, blocks] = b[0] === 0x34 ? [b.readUInt32BE(2), b.readUInt16BE(7)] : [Number(b.readBigUInt64BE(2)), b.readUInt32BE(10)];
      this.rangeCheck(m, lba, blocks);
    };
    // READ DEFECT DATA(10/12): an MO disc's defects are managed by the drive; the lists it reports are empty.
    h[0x37] = h[0xb7] = (c) => {
      this.requireMedium();
      const b = Buffer.from(c.cdb);
      const ten = b[0] === 0x37;
      const flags = (ten ? b[2]! : b[1]!) & 0x1f;
      const out = Buffer.alloc(ten ? 4 : 8);
      out[1] = flags; // PLISTV/GLISTV as asked, the requested format, no entries
      this.reply(c, out, ten ? b.readUInt16BE(7) : b.readUInt32BE(6));
    };
    h[Opcode.VERIFY_10] = h[Opcode.VERIFY_12] = h[Opcode.VERIFY_16] = async (c) => {
      const m = this.requireMedium();
      const bytchk = (c.cdb[1]! >> 1) & 3;
      if (bytchk === 2) throw invalidField(1, 2); // a field of the CDB is checked before the range it names
      const { lba, blocks } = this.decodeRw(c);
      this.rangeCheck(m, lba, blocks);
      if (blocks === 0) return;
      const bad = this.faults.mediumError('read', lba, blocks);
      if (bad !== undefined) throw check(SenseKey.MEDIUM_ERROR, 0x11, 0x00, { information: bad });
      c.mediumBytes = blocks * m.info.blockSize;
      if (bytchk === 0) return;
      const bs = m.info.blockSize;
      const need = bytchk === 3 ? bs : blocks * bs;
      if (c.cmd.direction !== 'out' || c.data.length < need) throw new HostFailure(HostStatus.ERROR);
      const onDisc = Buffer.alloc(blocks * bs);
      await m.read(lba, blocks, onDisc, 0);
      for (let i = 0; i < blocks; i++) {
        const expect = bytchk === 3 ? c.data.subarray(0, bs) : c.data.subarray(i * bs, (i + 1) * bs);
        const j = onDisc.subarray(i * bs, (i + 1) * bs).findIndex((v, k) => v !== expect[k]);
        if (j >= 0) throw check(SenseKey.MISCOMPARE, 0x1d, 0x00, { information: i * bs + j });
      }
      c.moved = need;
    };
    const modeSense = (c: Ctx, ten: boolean) => {
      const m = this.requireMedium();
      const b = Buffer.from(c.cdb);
      const dbd = !!(b[1]! & 0x08);
      const pc = b[2]! >> 6;
      const page = b[2]! & 0x3f;
      if (pc === 3) throw check(SenseKey.ILLEGAL_REQUEST, 0x39, 0x00); // saving parameters not supported
      if (b[3] !== 0 && b[3] !== 0xff) throw invalidField(3);
      let pages = page === 0 ? Buffer.alloc(0) : R.modePages(page);
      if (!pages) throw invalidField(2, 5);
      if (pc === 1) pages = Buffer.alloc(pages.length, 0).fill(0); // nothing is changeable
      const wp = m.info.writeProtected;
      if (ten) this.reply(c, R.modeSense10Data(wp, m.info.blockCount, m.info.blockSize, dbd, pages), b.readUInt16BE(7));
      else this.reply(c, R.modeSense6Data(wp, m.info.blockCount, m.info.blockSize, dbd, pages), b[4]!);
    };
    h[Opcode.MODE_SENSE_6] = (c) => modeSense(c, false);
    h[Opcode.MODE_SENSE_10] = (c) => modeSense(c, true);
    h[Opcode.START_STOP_UNIT] = async (c) => {
      const b = c.cdb;
      // A power condition (SBC-4 5.25) takes precedence over START and LOEJ; power is not modelled: nothing moves.
      if (b[4]! & 0xf0) return;
      const loej = !!(b[4]! & 0x02);
      const start = !!(b[4]! & 0x01);
      if (!loej) {
        this.requireMedium();
        return;
      }
      if (!start) {
        if (this.prevented) throw check(SenseKey.ILLEGAL_REQUEST, 0x53, 0x02);
        await this.unload();
        return;
      }
      // Loaded by the initiator's own command: it knows the medium changed, so no unit attention for it.
      if (!this.medium && this.trayImage) await this.load(this.trayImage, false);
    };
    h[Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL] = (c) => {
      this.prevented = (c.cdb[4]! & 0x03) !== 0;
    };
    h[Opcode.SYNCHRONIZE_CACHE_10] = async (c) => {
      const m = this.requireMedium();
      // The whole cache is written back whatever the range, but a range past the medium is still refused (SBC-4 5.23).
      const b = Buffer.from(c.cdb);
      this.rangeCheck(m, b.readUInt32BE(2), b.readUInt16BE(7));
      await m.flush();
      this.stats.syncs++;
    };
    h[Opcode.SERVICE_ACTION_IN_12] = (c) => {
      if (this.kind !== 'mo') throw invalidOpcode();
      const b = Buffer.from(c.cdb);
      if ((b[1]! & 0x1f) !== ServiceAction.READ_MEDIA_SERIAL_NUMBER) throw invalidField(1, 4);
      const m = this.requireMedium();
      const id = m.info.mediumId ?? Buffer.alloc(0);
      const out = Buffer.alloc(4 + id.length);
      out.writeUInt32BE(this.faults.rmsnLength() ?? id.length, 0);
      id.copy(out, 4);
      this.reply(c, out, b.readUInt32BE(6));
    };
    h[Opcode.REPORT_LUNS] = (c) => {
      const b = Buffer.from(c.cdb);
      if (b[2]! > 2) throw invalidField(2);
      const alloc = b.readUInt32BE(6);
      if (alloc < 16) throw invalidField(6);
      const out = Buffer.alloc(16);
      out.writeUInt32BE(8, 0); // one LUN: 0
      this.reply(c, out, alloc);
    };
    h[Opcode.READ_TOC_PMA_ATIP] = (c) => {
      if (this.kind !== 'cd') throw invalidOpcode();
      const m = this.requireMedium();
      const b = Buffer.from(c.cdb);
      const msf = !!(b[1]! & 0x02);
      const format = b[2]! & 0x0f;
      const alloc = b.readUInt16BE(7);
      if (format === 0) {
        const toc = R.tocData(m.info.blockCount, msf, b[6]!);
        if (!toc) throw invalidField(6);
        return this.reply(c, toc, alloc);
      }
      if (format === 1) return this.reply(c, R.sessionInfoData(msf), alloc);
      throw invalidField(2, 3);
    };
    h[Opcode.GET_CONFIGURATION] = (c) => {
      const b = Buffer.from(c.cdb);
      const rt = b[1]! & 0x03;
      if (rt === 3) throw invalidField(1, 1);
      this.reply(c, R.configurationData(this.kind, !!this.medium, rt, b.readUInt16BE(2)), b.readUInt16BE(7));
    };
    h[Opcode.MAINTENANCE_IN] = (c) => {
      const b = Buffer.from(c.cdb);
      if ((b[1]! & 0x1f) !== ServiceAction.REPORT_SUPPORTED_OPERATION_CODES) throw invalidField(1, 4);
      const options = b[2]! & 0x07;
      const rctd = !!(b[2]! & 0x80);
      const alloc = b.readUInt32BE(6);
      const ops = this.supportedOpcodes();
      // Command timeouts descriptor (SPC-5 6.35.4), when RCTD asks for it: nominal and recommended seconds.
      const timeouts = () => { const t = Buffer.alloc(12); t.writeUInt16BE(10, 0); t.writeUInt32BE(60, 4); t.writeUInt32BE(60, 8); return t; };
      if (options === 0) {
        const descs = ops.map(([op, sa, len]) => {
          const d = Buffer.alloc(8);
          d[0] = op;
          if (sa !== undefined) { d.writeUInt16BE(sa, 2); d[5] = 0x01; }
          if (rctd) d[5] = d[5]! | 0x02; // CTDP
          d.writeUInt16BE(len, 6);
          return rctd ? Buffer.concat([d, timeouts()]) : d;
        });
        const h4 = Buffer.alloc(4);
        h4.writeUInt32BE(descs.reduce((n, d) => n + d.length, 0), 0);
        return this.reply(c, Buffer.concat([h4, ...descs]), alloc);
      }
      if (options === 1 || options === 2 || options === 3) {
        const op = b[3]!;
        const sa = b.readUInt16BE(4);
        const withSa = ops.some(([o, s]) => o === op && s !== undefined);
        const known = ops.some(([o]) => o === op);
        // 001b is for commands without service actions, 010b for those with; 011b for either (SPC-5 6.35.2).
        if (known && options !== 3 && (options === 1) === withSa) throw invalidField(2, 2);
        const bySa = options === 2 || (options === 3 && withSa);
        const found = ops.find(([o, s]) => o === op && (bySa ? s === sa : s === undefined));
        const len = found ? found[2] : 0;
        const out = Buffer.alloc(4 + len);
        out[1] = (found ? 0x03 : 0x01) | (rctd && found ? 0x80 : 0); // supported per standard / not supported; CTDP
        out.writeUInt16BE(len, 2);
        if (found) {
          // CDB usage data: the opcode, then a mask of the bits the device looks at (all of them here).
          out[4] = op;
          out.fill(0xff, 5, 4 + len);
          if (sa !== undefined && found[1] !== undefined) { out[5] = 0x1f; }
        }
        return this.reply(c, rctd && found ? Buffer.concat([out, timeouts()]) : out, alloc);
      }
      throw invalidField(2, 2);
    };
    return h;
  }

  private supportedOpcodes(): Array<[number, number | undefined, number]> {
    const list: Array<[number, number | undefined, number]> = [];
    for (const k of Object.keys(this.handlers)) {
      const op = Number(k);
      if (op === Opcode.SERVICE_ACTION_IN_16) list.push([op, ServiceAction.READ_CAPACITY_16, 16]);
      else if (op === Opcode.SERVICE_ACTION_IN_12) { if (this.kind === 'mo') list.push([op, ServiceAction.READ_MEDIA_SERIAL_NUMBER, 12]); }
      else if (op === Opcode.MAINTENANCE_IN) list.push([op, ServiceAction.REPORT_SUPPORTED_OPERATION_CODES, 12]);
      else if (op === Opcode.READ_TOC_PMA_ATIP && this.kind !== 'cd') continue;
      else if (WRITES.has(op) && this.kind === 'cd') continue;
      else list.push([op, undefined, groupLength(op)]);
    }
    return list.sort((a, b) => a[0] - b[0]);
  }

  // ---- the operator's hands: insert, eject, power, reset -------------------------------

  /** Runs an operator action in order with the commands (a disc is never swapped under a running command). */
  private serialized(fn: () => Promise<void>): Promise<void> {
    const p = this.queue.then(fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Takes the disc out (as the eject button would; ignores PREVENT like a forced eject). */
  eject(): Promise<void> {
    return this.serialized(() => this.unload());
  }

  private async unload(): Promise<void> {
    if (!this.medium) return;
    this.trayImage = this.medium.info.path;
    await this.medium.close(true);
    this.medium = undefined;
    this.prevented = false;
    const next = this.changerQueue.shift();
    if (next !== undefined && !this.closed) {
      this.changerTimer = setTimeout(() => {
        this.changerTimer = undefined;
        if (!this.closed) this.insert(next).catch(() => undefined);
      }, this.changerDelayMs);
    }
  }

  private readonly changerDelayMs: number;

  /** Discs the changer has not inserted yet. */
  get changerRemaining(): number {
    return this.changerQueue.length + (this.changerTimer ? 1 : 0);
  }

  /** Puts a disc (image file) in the drive; the next command gets UNIT ATTENTION 28/00. */
  insert(imagePath: string): Promise<void> {
    return this.serialized(() => this.load(imagePath));
  }

  private async load(imagePath: string, attention = true): Promise<void> {
    if (this.medium) await this.unload();
    const m = await Medium.load(imagePath, this.kind, this.cacheOptions);
    if (m.info.kind !== this.kind) {
      await m.close(false);
      throw new Error(`cannot insert a ${m.info.kind.toUpperCase()} image into an emulated ${this.kind.toUpperCase()} drive`);
    }
    this.medium = m;
    if (attention) this.pendingAttention.push(buildFixedSense(SenseKey.UNIT_ATTENTION, 0x28, 0x00));
  }

  /** Power lost: unsynced writes are gone and the drive stops answering until powerOn(). */
  powerCut(): void {
    this.medium?.dropCache();
    this.poweredOff = true;
  }

  powerOn(): void {
    if (!this.poweredOff) return;
    this.poweredOff = false;
    this.prevented = false;
    this.pendingAttention = [buildFixedSense(SenseKey.UNIT_ATTENTION, 0x29, 0x01)];
  }

  get isPoweredOff(): boolean {
    return this.poweredOff;
  }

  /** A bus reset: the next command gets UNIT ATTENTION 29/02; PREVENT is released. */
  busReset(): void {
    this.prevented = false;
    this.pendingAttention.push(buildFixedSense(SenseKey.UNIT_ATTENTION, 0x29, 0x02));
  }

  /** Closes the drive. A clean close writes the cache back (as the OS does on release); after a power cut nothing is written. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.changerTimer) clearTimeout(this.changerTimer);
    for (const h of [...this.hung]) h.answer(); // commands hung by a fault end with the drive, not a minute later
    await this.queue.catch(() => undefined);
    if (this.medium) await this.medium.close(!this.poweredOff);
    this.medium = undefined;
  }
}

/** Fixed (70h) to descriptor (72h) format, for REQUEST SENSE with DESC=1. */
function toDescriptorSense(fixed: Buffer): Buffer {
  const out = Buffer.alloc(8);
  out[0] = (fixed[0]! & 0x7f) === 0x71 ? 0x73 : 0x72;
  out[1] = fixed[2]! & 0x0f;
  out[2] = fixed[12] ?? 0;
  out[3] = fixed[13] ?? 0;
  const descs: Buffer[] = [];
  if (fixed[0]! & 0x80) {
    const d = Buffer.alloc(12);
    d[0] = 0x00;
    d[1] = 0x0a;
    d[2] = 0x80;
    d.writeUInt32BE(fixed.readUInt32BE(3), 8);
    descs.push(d);
  }
  if (fixed.length >= 18 && fixed[15]! & 0x80) {
    const d = Buffer.alloc(8);
    d[0] = 0x02;
    d[1] = 0x06;
    fixed.copy(d, 4, 15, 18);
    descs.push(d);
  }
  const body = Buffer.concat(descs);
  out[7] = body.length;
  return Buffer.concat([out, body]);
}
