/**
 * ScsiDevice: the device API every layer above the SCSI layer uses, over any Transport.
 * All commands go through one `run()`: transport, result check (typed errors with decoded sense),
 * then the retry policy. Large I/O is split by the transport's max transfer; streams keep several
 * commands in flight with bounded memory.
 */
import { RefusedError } from '../errors.js';
import * as cdb from './cdb.js';
import { DEFAULT_IN_FLIGHT, type BlockDevice, type Capacity, type InquiryInfo, type MediumIdResult, type StreamOptions } from './device-api.js';
import { readMediumId, type DataInRunner } from './medium-id.js';
import { parseInquiry, parseModeSense10, parseModeSense6, parseReadCapacity10, parseReadCapacity16, parseUnitSerial } from './parse.js';
import { BUILTIN_QUIRKS, findQuirk, type MediumIdMethod, type Quirk } from './quirks.js';
import { defaultRetryPolicy, retrying, type RetryPolicy } from './retry.js';
import { FormatError } from '../errors.js';
import { checkResult, DeviceAnswerError, isInvalidField, isInvalidOpcode, ScsiError, ShortTransferError, TransportError } from './scsi-errors.js';
import type { DataDirection, ScsiCommand, ScsiResult, Transport } from './transport.js';
import { answerProblem, MAX_SENSE_BYTES } from './validate.js';

/** Default timeouts by command class (ms). */
export const DEFAULT_TIMEOUTS = {
  quick: 10_000, // TEST UNIT READY, INQUIRY, REQUEST SENSE, MODE SENSE, capacity
  io: 60_000, // READ, WRITE, VERIFY
  sync: 120_000, // SYNCHRONIZE CACHE
  mechanical: 60_000, // START STOP UNIT
};

/** A READ that answers GOOD with a residual is sent again this many times in all before it fails. */
export const SHORT_TRANSFER_ATTEMPTS = 3;
/** Block sizes a drive may report (READ CAPACITY); anything else is a lie or a medium mocopy cannot use. */
export const BLOCK_SIZES: readonly number[] = [512, 1024, 2048, 4096];

export interface DeviceOptions {
  quirks?: readonly Quirk[];
  retry?: Partial<RetryPolicy>;
  timeouts?: Partial<typeof DEFAULT_TIMEOUTS>;
  /** Called on every UNIT ATTENTION seen (after which the command was retried once). */
  onUnitAttention?: (e: ScsiError) => void;
}

export interface RawResult extends ScsiResult {
  /** Data-in bytes actually transferred. */
  data?: Buffer;
}

export class MediumChangedError extends RefusedError {
  constructor(device: string, cause: ScsiError) {
    super('E_MEDIUM_CHANGED', `${device}: the disc was changed or the drive was reset (${cause.senseText}) after its medium ID was read; stopped before writing to what may be another disc`, {
      hint: 'put the intended disc back and run the same command again', cause,
    });
  }
}

/** For commands whose caller wants no answer (TEST UNIT READY): settles once the command has. */
const noAnswer = (): void => undefined;

export class ScsiDevice implements BlockDevice, DataInRunner {
  readonly spec: string;
  readonly transport: Transport;
  private readonly quirks: readonly Quirk[];
  private readonly retry: RetryPolicy;
  private readonly timeouts: typeof DEFAULT_TIMEOUTS;
  private readonly onUnitAttention: ((e: ScsiError) => void) | undefined;
  private attentions = 0;
  private cachedCapacity: Capacity | undefined;
  private cachedInquiry: InquiryInfo | undefined;
  private mediumGuard = false;

  constructor(spec: string, transport: Transport, opts: DeviceOptions = {}) {
    this.spec = spec;
    this.transport = transport;
    this.quirks = opts.quirks ?? BUILTIN_QUIRKS;
    this.retry = { ...defaultRetryPolicy, ...opts.retry };
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.onUnitAttention = opts.onUnitAttention;
  }

  get unitAttentionCount(): number {
    return this.attentions;
  }

  /** One command, checked and retried per policy. `data` is used in place. */
  run(cdbBytes: Buffer, direction: DataDirection, data: Buffer | undefined, timeoutMs: number): Promise<ScsiResult> {
    // No async frames of its own: a command that succeeds at once (nearly all) costs one promise from the
    // transport and one .then here; retries take the slow road in retrying().
    const cmd: ScsiCommand = data ? { cdb: cdbBytes, direction, data, timeoutMs } : { cdb: cdbBytes, direction, timeoutMs };
    return this.afterFirst(cmd, this.send(cmd));
  }

  /** The transport's execute(), a synchronous throw (a transport that breaks its contract) made a rejection. */
  private send(cmd: ScsiCommand): Promise<ScsiResult> {
    try {
      return this.transport.execute(cmd);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Several commands handed to the transport in one call where it can take them so (Transport.executeBatch: the
   * native addon sends them to the sg driver back to back, in order), each then checked and retried as run() does.
   * One promise per command. For callers with several independent commands ready at once.
   */
  runBatch(cmds: ReadonlyArray<{ cdb: Buffer; direction: DataDirection; data?: Buffer; timeoutMs: number }>): Array<Promise<ScsiResult>> {
    const list: ScsiCommand[] = cmds.map((c) => (c.data ? { cdb: c.cdb, direction: c.direction, data: c.data, timeoutMs: c.timeoutMs } : { cdb: c.cdb, direction: c.direction, timeoutMs: c.timeoutMs }));
    let first: Array<Promise<ScsiResult>>;
    try {
      first = this.transport.executeBatch ? this.transport.executeBatch(list) : list.map((c) => this.send(c));
    } catch (e) {
      first = list.map(() => Promise.reject(e));
    }
    return list.map((c, i) => this.afterFirst(c, first[i]!));
  }

  private afterFirst(cmd: ScsiCommand, p: Promise<ScsiResult>): Promise<ScsiResult> {
    // The first attempt's answer checked in the same reaction that receives it; a failure of either kind goes to
    // the retry loop, which makes its further attempts through attempt().
    return p.then((result) => {
      try {
        return this.checked(cmd, result);
      } catch (e) {
        return retrying(e, () => this.attempt(cmd), this.retry, this.onAttentionSeen);
      }
    }, (e) => retrying(this.asTransportError(cmd.cdb as Buffer, e), () => this.attempt(cmd), this.retry, this.onAttentionSeen));
  }

  /** A retry's attempt: checked, a transport failure as TransportError. */
  private attempt(cmd: ScsiCommand): Promise<ScsiResult> {
    return this.send(cmd).then((result) => this.checked(cmd, result), (e) => { throw this.asTransportError(cmd.cdb as Buffer, e); });
  }

  private asTransportError(cdbBytes: Buffer, e: unknown): Error {
    if (e instanceof TypeError || e instanceof TransportError) return e;
    return new TransportError({ device: this.spec, cdb: cdbBytes, message: `${this.spec}: ${cdb.opcodeName(cdbBytes)} failed: ${(e as Error).message}`, cause: e, ...((e as NodeJS.ErrnoException).code ? { code: (e as NodeJS.ErrnoException).code! } : {}) });
  }

  private checked(cmd: ScsiCommand, answer: ScsiResult): ScsiResult {
    let result = answer;
    const problem = answerProblem(cmd, result);
    if (problem) throw new DeviceAnswerError(this.spec, cmd.cdb as Buffer, problem);
    if (result.sense.length > MAX_SENSE_BYTES) result = { ...result, sense: Buffer.from(result.sense.subarray(0, MAX_SENSE_BYTES)) };
    checkResult(this.spec, cmd, result);
    return result;
  }

  private readonly onAttentionSeen = (e: ScsiError): void => {
    // Any UNIT ATTENTION may mean the disc was swapped or the drive reset: invalidate what we know.
    this.attentions++;
    this.cachedCapacity = undefined;
    this.onUnitAttention?.(e);
    if (this.mediumGuard && (e.asc === 0x28 || e.asc === 0x29)) {
      // Not retried: the command must not run against what may be another disc.
      throw new MediumChangedError(this.spec, e);
    }
  };

  /**
   * While guarded, a medium-changed or reset UNIT ATTENTION fails the command instead of being retried,
   * so nothing is ever written to a disc other than the one whose medium ID was read.
   */
  setMediumGuard(on: boolean): void {
    this.mediumGuard = on;
  }

  /** Sends a data-in command and returns the bytes actually transferred. */
  async dataIn(cdbBytes: Buffer, alloc: number, opts: { timeoutMs?: number } = {}): Promise<Buffer> {
    const buf = Buffer.alloc(alloc);
    const r = await this.run(cdbBytes, 'in', buf, opts.timeoutMs ?? this.timeouts.quick);
    return buf.subarray(0, Math.max(0, alloc - r.residual));
  }

  /** Sends a data-in command and parses the answer; an unparsable answer is the drive's fault, named as such. */
  async answer<T>(cdbBytes: Buffer, alloc: number, parse: (b: Buffer) => T): Promise<T> {
    const bytes = await this.dataIn(cdbBytes, alloc);
    try {
      return parse(bytes);
    } catch (e) {
      if (e instanceof FormatError) throw new DeviceAnswerError(this.spec, cdbBytes, e.message);
      throw e;
    }
  }

  /**
   * A READ must move every byte asked for: GOOD with a residual is a short transfer, sent again a bounded
   * number of times, then a typed error. The caller never sees the bytes that did not arrive.
   */
  /** `first`: the first attempt's answer when the caller already sent it (runBatch). */
  private async readExact(cdbBytes: Buffer, buf: Buffer, first?: Promise<ScsiResult>): Promise<void> {
    let residual = 0;
    for (let attempt = 1; attempt <= SHORT_TRANSFER_ATTEMPTS; attempt++) {
      residual = (await (attempt === 1 && first ? first : this.run(cdbBytes, 'in', buf, this.timeouts.io))).residual;
      if (residual === 0) return;
    }
    throw new ShortTransferError(this.spec, cdbBytes, buf.length, residual, SHORT_TRANSFER_ATTEMPTS);
  }

  /** A raw command for `mocopy raw`: never throws on CHECK CONDITION, returns the result as is. */
  async raw(cdbBytes: Buffer, direction: DataDirection, data: Buffer | undefined, timeoutMs: number): Promise<RawResult> {
    const r = await this.transport.execute({ cdb: cdbBytes, direction, ...(data ? { data } : {}), timeoutMs });
    return direction === 'in' && data ? { ...r, data: data.subarray(0, data.length - r.residual) } : r;
  }

  async inquiry(): Promise<InquiryInfo> {
    if (!this.cachedInquiry) this.cachedInquiry = await this.answer(cdb.inquiry({ alloc: 96 }), 96, parseInquiry);
    return this.cachedInquiry;
  }

  async unitSerial(): Promise<string | undefined> {
    try {
      return (await this.answer(cdb.inquiry({ evpd: true, page: 0x80, alloc: 0xfc }), 0xfc, parseUnitSerial)) || undefined;
    } catch (e) {
      if (isInvalidField(e)) return undefined;
      throw e;
    }
  }

  testUnitReady(): Promise<void> {
    return this.run(cdb.testUnitReady(), 'none', undefined, this.timeouts.quick).then(noAnswer);
  }

  async capacity(): Promise<Capacity> {
    if (this.cachedCapacity) return this.cachedCapacity;
    const rc10 = cdb.readCapacity10();
    const c10 = await this.answer(rc10, 8, parseReadCapacity10);
    const rc16 = cdb.readCapacity16(32);
    const cap = c10.saturated ? await this.answer(rc16, 32, parseReadCapacity16) : c10;
    // These two numbers size every buffer and bound every LBA from here on.
    if (!BLOCK_SIZES.includes(cap.blockSize)) throw new DeviceAnswerError(this.spec, c10.saturated ? rc16 : rc10, `block size ${cap.blockSize} (expected ${BLOCK_SIZES.join(', ')})`);
    if (!(cap.blockCount >= 1) || !Number.isSafeInteger(cap.bytes)) throw new DeviceAnswerError(this.spec, c10.saturated ? rc16 : rc10, `${cap.blockCount} blocks`);
    this.cachedCapacity = { blockSize: cap.blockSize, blockCount: cap.blockCount, bytes: cap.bytes };
    return this.cachedCapacity;
  }

  /** Blocks per command: the transport's limit rounded down to whole blocks (at least one). */
  async maxBlocksPerCommand(): Promise<number> {
    const { blockSize } = await this.capacity();
    return Math.max(1, Math.floor(Math.min(this.transport.limits.maxTransferBytes, 0xffff * blockSize) / blockSize));
  }

  private rwCdb(write: boolean, lba: number, blocks: number, fua: boolean): Buffer {
    if (lba + blocks <= 0x100000000 && blocks <= 0xffff) return write ? cdb.write10(lba, blocks, { fua }) : cdb.read10(lba, blocks, { fua });
    return write ? cdb.write16(lba, blocks, { fua }) : cdb.read16(lba, blocks, { fua });
  }

  private async checkRange(lba: number, blocks: number, target?: Buffer): Promise<Capacity> {
    const cap = await this.capacity();
    if (!Number.isInteger(lba) || lba < 0 || !Number.isInteger(blocks) || blocks < 0) throw new RangeError(`bad LBA range ${lba}+${blocks}`);
    if (target && target.length !== blocks * cap.blockSize) throw new RangeError(`buffer of ${target.length} bytes is not ${blocks} blocks of ${cap.blockSize}`);
    return cap;
  }

  async read(lba: number, blocks: number): Promise<Buffer> {
    const cap = await this.capacity();
    const buf = Buffer.allocUnsafe(blocks * cap.blockSize);
    await this.readInto(lba, buf);
    return buf;
  }

  async readInto(lba: number, target: Buffer): Promise<void> {
    const cap = await this.capacity();
    if (target.length % cap.blockSize !== 0) throw new RangeError(`buffer of ${target.length} bytes is not a whole number of ${cap.blockSize}-byte blocks`);
    const blocks = target.length / cap.blockSize;
    await this.checkRange(lba, blocks);
    const per = await this.maxBlocksPerCommand();
    for (let done = 0; done < blocks; done += per) {
      const n = Math.min(per, blocks - done);
      const slice = target.subarray(done * cap.blockSize, (done + n) * cap.blockSize);
      await this.readExact(this.rwCdb(false, lba + done, n, false), slice);
    }
  }

  async write(lba: number, data: Buffer, opts: { fua?: boolean } = {}): Promise<void> {
    const cap = await this.capacity();
    if (data.length % cap.blockSize !== 0) throw new RangeError(`data of ${data.length} bytes is not a whole number of ${cap.blockSize}-byte blocks`);
    const blocks = data.length / cap.blockSize;
    await this.checkRange(lba, blocks);
    const per = await this.maxBlocksPerCommand();
    for (let done = 0; done < blocks; done += per) {
      const n = Math.min(per, blocks - done);
      await this.run(this.rwCdb(true, lba + done, n, !!opts.fua), 'out', data.subarray(done * cap.blockSize, (done + n) * cap.blockSize), this.timeouts.io);
    }
  }

  async verify(lba: number, blocks: number): Promise<void> {
    const per = 0xffff;
    for (let done = 0; done < blocks; done += per) {
      await this.run(cdb.verify10(lba + done, Math.min(per, blocks - done)), 'none', undefined, this.timeouts.io);
    }
  }

  async sync(): Promise<void> {
    await this.run(cdb.synchronizeCache10(), 'none', undefined, this.timeouts.sync);
  }

  async isWriteProtected(): Promise<boolean> {
    try {
      return (await this.answer(cdb.modeSense6({ page: 0x3f, alloc: 0xfc }), 0xfc, parseModeSense6)).writeProtected;
    } catch (e) {
      if (!isInvalidOpcode(e) && !isInvalidField(e)) throw e;
      return (await this.answer(cdb.modeSense10({ page: 0x3f, alloc: 0x200 }), 0x200, parseModeSense10)).writeProtected;
    }
  }

  /** The medium-ID method for this drive: the quirk for its model, else READ MEDIA SERIAL NUMBER. */
  async mediumIdMethod(): Promise<MediumIdMethod> {
    const inq = await this.inquiry();
    return findQuirk(inq, this.quirks)?.method ?? { type: 'read-media-serial-number' };
  }

  async mediumId(): Promise<MediumIdResult> {
    return readMediumId(this, await this.mediumIdMethod());
  }

  async setRemovalPrevented(prevent: boolean): Promise<void> {
    await this.run(cdb.preventAllowMediumRemoval(prevent), 'none', undefined, this.timeouts.quick);
  }

  async eject(): Promise<void> {
    await this.run(cdb.startStopUnit({ start: false, loej: true }), 'none', undefined, this.timeouts.mechanical);
    this.cachedCapacity = undefined;
  }

  async load(): Promise<void> {
    await this.run(cdb.startStopUnit({ start: true, loej: true }), 'none', undefined, this.timeouts.mechanical);
    this.cachedCapacity = undefined;
  }

  async *readStream(lba: number, blocks: number, opts: StreamOptions = {}): AsyncIterable<Buffer> {
    const cap = await this.checkRange(lba, blocks);
    const per = await this.chunkBlocks(opts);
    const inFlight = Math.max(1, opts.inFlight ?? DEFAULT_IN_FLIGHT);
    const total = blocks * cap.blockSize;
    const pending: Array<Promise<Buffer>> = [];
    let next = 0;
    let delivered = 0;
    const ring = opts.recycle ? Array.from({ length: inFlight + 1 }, () => Buffer.allocUnsafe(per * cap.blockSize)) : undefined;
    let ringAt = 0;
    const pool = opts.pool && !ring && opts.pool.size === per * cap.blockSize ? opts.pool : undefined;
    const nextRead = () => {
      const n = Math.min(per, blocks - next);
      const buf = ring ? ring[ringAt++ % ring.length]!.subarray(0, n * cap.blockSize)
        : pool ? pool.take().subarray(0, n * cap.blockSize) : Buffer.allocUnsafe(n * cap.blockSize);
      const at = lba + next;
      next += n;
      return { cdb: this.rwCdb(false, at, n, false), direction: 'in' as const, data: buf, timeoutMs: this.timeouts.io };
    };
    const track = (p: Promise<Buffer>) => {
      p.catch(() => undefined); // surfaced when awaited in order
      pending.push(p);
    };
    const issue = () => {
      const r = nextRead();
      track(this.readExact(r.cdb, r.data).then(() => r.data));
    };
    try {
      // The first inFlight READs in one transport call (back to back to the device), then one per chunk delivered.
      const opening: Array<ReturnType<typeof nextRead>> = [];
      while (next < blocks && opening.length < inFlight) opening.push(nextRead());
      const sent = this.runBatch(opening);
      opening.forEach((r, i) => track(this.readExact(r.cdb, r.data, sent[i]).then(() => r.data)));
      while (pending.length > 0) {
        opts.signal?.throwIfAborted();
        const buf = await pending.shift()!;
        if (next < blocks) issue();
        delivered += buf.length;
        opts.onProgress?.({ bytes: delivered, total });
        yield buf;
      }
    } finally {
      await Promise.allSettled(pending);
    }
  }

  async writeStream(lba: number, source: AsyncIterable<Buffer>, opts: StreamOptions = {}): Promise<number> {
    const cap = await this.capacity();
    const bs = cap.blockSize;
    const per = await this.chunkBlocks(opts);
    const chunkBytes = per * bs;
    const inFlight = Math.max(1, opts.inFlight ?? DEFAULT_IN_FLIGHT);
    const pending = new Set<Promise<void>>();
    // Several WRITEs are in flight and may fail in any order (a kernel or an iSCSI initiator can complete them out
    // of order): the error reported is the one of the lowest LBA, so a failing disc gives the same answer on every path.
    let failure: { lba: number; error: unknown } | undefined;
    let at = lba;
    let written = 0;
    let carry: Buffer[] = [];
    let carried = 0;
    // Buffers this method assembled itself go back to a small pool once their WRITE completed.
    const pool: Buffer[] = [];
    const assemble = (parts: Buffer[], length: number): Buffer => {
      const out = (length === chunkBytes ? pool.pop() : undefined) ?? Buffer.allocUnsafe(length);
      let o = 0;
      for (const p of parts) o += p.copy(out, o);
      return out.subarray(0, length);
    };
    const issue = async (chunk: Buffer, pooled = false) => {
      const blocks = chunk.length / bs;
      if (at + blocks > cap.blockCount) throw new RangeError(`write past the end of ${this.spec} (LBA ${at}+${blocks} > ${cap.blockCount})`);
      const from = at;
      const p = this.run(this.rwCdb(true, at, blocks, false), 'out', chunk, this.timeouts.io).then(() => {
        written += chunk.length;
        if (pooled && pool.length <= inFlight) pool.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunkBytes));
        else if (!pooled) opts.pool?.give(chunk);
        opts.onProgress?.({ bytes: written, total: 0 });
      }, (e) => { if (!failure || from < failure.lba) failure = { lba: from, error: e }; });
      at += blocks;
      pending.add(p);
      void p.finally(() => pending.delete(p));
      if (pending.size >= inFlight) await Promise.race(pending);
      if (failure) throw failure.error;
    };
    try {
      for await (const piece of source) {
        opts.signal?.throwIfAborted();
        carry.push(piece);
        carried += piece.length;
        while (carried >= chunkBytes) {
          if (carry.length === 1) {
            // A whole chunk in the caller's own buffer: sent as is, no copy.
            const all = carry[0]!;
            await issue(all.subarray(0, chunkBytes));
            const rest = all.subarray(chunkBytes);
            carry = rest.length ? [rest] : [];
            carried = rest.length;
            continue;
          }
          const take: Buffer[] = [];
          let need = chunkBytes;
          while (need > 0) {
            const head = carry[0]!;
            if (head.length <= need) { take.push(head); carry.shift(); need -= head.length; }
            else { take.push(head.subarray(0, need)); carry[0] = head.subarray(need); need = 0; }
          }
          carried -= chunkBytes;
          await issue(assemble(take, chunkBytes), true);
        }
      }
      if (carried > 0) {
        if (carried % bs !== 0) throw new RangeError(`stream ended with ${carried} bytes, not a whole number of ${bs}-byte blocks`);
        await issue(carry.length === 1 ? carry[0]! : assemble(carry, carried));
      }
    } catch (e) {
      await Promise.allSettled(pending);
      throw failure ? failure.error : e;
    }
    await Promise.allSettled(pending);
    if (failure) throw failure.error;
    return written / bs;
  }

  private async chunkBlocks(opts: StreamOptions): Promise<number> {
    const { blockSize } = await this.capacity();
    const max = await this.maxBlocksPerCommand();
    const want = Math.floor((opts.chunkBytes ?? 1 << 20) / blockSize);
    return Math.max(1, Math.min(max, want));
  }

  async streamChunkBytes(opts: StreamOptions = {}): Promise<number> {
    return (await this.chunkBlocks(opts)) * (await this.capacity()).blockSize;
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}
