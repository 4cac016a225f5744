/**
 * A tiny raw iSCSI initiator for tests: builds initiator PDUs byte by byte (independently of lib/iscsi's codec),
 * frames the target's PDUs off a node:net socket (no digests), answers the target's NOP-In pings when asked to,
 * and knows just enough to log in and run a SCSI command with R2T/Data-Out and Data-In.
 */
import { connect, type Socket } from 'node:net';

export const RESERVED = 0xffffffff;

export interface RawPduFields {
  opcode: number;
  immediate?: boolean;
  flags?: number;
  byte2?: number;
  byte3?: number;
  ahsLength?: number;
  /** Overrides the data segment length field (default: data.length). */
  dataLength?: number;
  /** Bytes 8-15 (LUN, or ISID+TSIH for login). */
  bytes8?: Buffer;
  itt?: number;
  word20?: number;
  word24?: number;
  word28?: number;
  /** Bytes 32-47 (CDB for a SCSI command). */
  bytes32?: Buffer;
  word36?: number;
  word40?: number;
  data?: Buffer;
}

/** One initiator PDU's wire bytes: header, data, padding to 4 bytes. */
export function rawPdu(f: RawPduFields): Buffer {
  const data = f.data ?? Buffer.alloc(0);
  const h = Buffer.alloc(48);
  h[0] = (f.immediate ? 0x40 : 0) | (f.opcode & 0x3f);
  h[1] = f.flags ?? 0;
  h[2] = f.byte2 ?? 0;
  h[3] = f.byte3 ?? 0;
  h[4] = f.ahsLength ?? 0;
  h.writeUIntBE(f.dataLength ?? data.length, 5, 3);
  f.bytes8?.copy(h, 8, 0, 8);
  h.writeUInt32BE((f.itt ?? 0) >>> 0, 16);
  h.writeUInt32BE((f.word20 ?? 0) >>> 0, 20);
  h.writeUInt32BE((f.word24 ?? 0) >>> 0, 24);
  h.writeUInt32BE((f.word28 ?? 0) >>> 0, 28);
  f.bytes32?.copy(h, 32, 0, 16);
  if (f.word36 !== undefined) h.writeUInt32BE(f.word36 >>> 0, 36);
  if (f.word40 !== undefined) h.writeUInt32BE(f.word40 >>> 0, 40);
  const pad = Buffer.alloc((4 - (data.length % 4)) % 4);
  return Buffer.concat([h, data, pad]);
}

export function textData(kv: Array<[string, string]>): Buffer {
  return Buffer.from(kv.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

export function parseText(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of data.toString('utf8').split('\0')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/** A login request PDU: immediate, T=1 CSG=1 NSG=3 by default (the brief's 0x43 / 0x87). */
export function loginPdu(o: { isid: Buffer; itt?: number; cmdSN?: number; expStatSN?: number; flags?: number; keys: Array<[string, string]> }): Buffer {
  const bytes8 = Buffer.alloc(8);
  o.isid.copy(bytes8, 0, 0, 6);
  return rawPdu({
    opcode: 0x03, immediate: true, flags: o.flags ?? 0x87, bytes8, itt: o.itt ?? 1, word24: o.cmdSN ?? 1, word28: o.expStatSN ?? 0,
    data: textData(o.keys),
  });
}

export function lun0(): Buffer {
  return Buffer.alloc(8);
}

export interface TargetPduView {
  opcode: number;
  flags: number;
  byte2: number;
  byte3: number;
  bytes8: Buffer;
  itt: number;
  word20: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  word36: number;
  word40: number;
  word44: number;
  header: Buffer;
  data: Buffer;
}

function view(header: Buffer, data: Buffer): TargetPduView {
  return {
    opcode: header[0]! & 0x3f, flags: header[1]!, byte2: header[2]!, byte3: header[3]!, bytes8: header.subarray(8, 16),
    itt: header.readUInt32BE(16), word20: header.readUInt32BE(20), statSN: header.readUInt32BE(24), expCmdSN: header.readUInt32BE(28),
    maxCmdSN: header.readUInt32BE(32), word36: header.readUInt32BE(36), word40: header.readUInt32BE(40), word44: header.readUInt32BE(44),
    header, data,
  };
}

export interface CommandResult {
  status: number;
  data: Buffer;
  /** The PDUs that made up the answer (Data-In, SCSI Response). */
  pdus: TargetPduView[];
  residualFlags: number;
  residual: number;
}

export class RawInitiator {
  private buffered: Buffer = Buffer.alloc(0);
  private readonly queue: TargetPduView[] = [];
  private waiter: (() => void) | undefined;
  /** Every PDU received, pings included. */
  readonly received: TargetPduView[] = [];
  isClosed = false;
  /** Resolves when the target ends or closes the connection. */
  readonly closed: Promise<void>;
  /** Answer NOP-In pings (ITT 0xffffffff) with a NOP-Out, as a live initiator does. */
  answerPings = false;
  pingsAnswered = 0;
  cmdSN = 1;
  expStatSN = 0;
  private nextItt = 0x100;

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => undefined);
    this.closed = new Promise<void>((resolve) => {
      const done = () => {
        this.isClosed = true;
        this.waiter?.();
        resolve();
      };
      socket.once('end', done);
      socket.once('close', done);
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawInitiator> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host });
      s.once('connect', () => resolve(new RawInitiator(s)));
      s.once('error', reject);
    });
  }

  get localPort(): number {
    return this.socket.localPort!;
  }

  itt(): number {
    return this.nextItt++;
  }

  private onData(d: Buffer): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, d]) : d;
    while (this.buffered.length >= 48) {
      const ahs = this.buffered[4]! * 4;
      const len = this.buffered.readUIntBE(5, 3);
      const total = 48 + ahs + ((len + 3) & ~3);
      if (this.buffered.length < total) break;
      const header = Buffer.from(this.buffered.subarray(0, 48));
      const data = Buffer.from(this.buffered.subarray(48 + ahs, 48 + ahs + len));
      this.buffered = this.buffered.subarray(total);
      const p = view(header, data);
      this.received.push(p);
      if (p.opcode === 0x20 && p.itt === RESERVED) {
        // A keep-alive ping from the target: answered (when live), never queued.
        if (this.answerPings && p.word20 !== RESERVED) {
          this.pingsAnswered++;
          this.send(rawPdu({ opcode: 0x00, immediate: true, flags: 0x80, bytes8: p.bytes8, itt: RESERVED, word20: p.word20, word24: this.cmdSN, word28: this.expStatSN }));
        }
        continue;
      }
      this.queue.push(p);
    }
    this.waiter?.();
  }

  send(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  /** The next queued PDU (pings excluded); undefined after `timeoutMs` or when the connection closed first. */
  async next(timeoutMs = 5000): Promise<TargetPduView | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = this.queue.shift();
      if (p) return p;
      if (this.isClosed) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => { clearTimeout(t); this.waiter = undefined; resolve(); };
      });
    }
  }

  /** Like `next`, but fails the test when nothing comes. */
  async expect(what: string, timeoutMs = 5000): Promise<TargetPduView> {
    const p = await this.next(timeoutMs);
    if (!p) throw new Error(`expected ${what}, got ${this.isClosed ? 'the connection closed' : `nothing in ${timeoutMs} ms`}`);
    return p;
  }

  /** Resolves true when the connection closes within `ms`, false otherwise. */
  async closesWithin(ms: number): Promise<boolean> {
    let t: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.closed.then(() => true), new Promise<boolean>((resolve) => { t = setTimeout(() => resolve(false), ms); })]);
    clearTimeout(t);
    return r;
  }

  /** A status-bearing PDU: the next StatSN expected follows its StatSN. */
  private track(p: TargetPduView): void {
    this.expStatSN = (p.statSN + 1) >>> 0;
  }

  /** One-request login (security stage skipped): returns the Login Response. */
  async login(o: { initiatorName: string; targetName: string; isid: Buffer; extra?: Array<[string, string]> }): Promise<TargetPduView> {
    this.send(loginPdu({
      isid: o.isid, itt: this.itt(), cmdSN: this.cmdSN, expStatSN: 0,
      keys: [['InitiatorName', o.initiatorName], ['TargetName', o.targetName], ['SessionType', 'Normal'], ...(o.extra ?? [])],
    }));
    const r = await this.expect('a Login Response');
    if (r.opcode !== 0x23) throw new Error(`expected a Login Response, got opcode 0x${r.opcode.toString(16)}`);
    this.track(r);
    this.cmdSN = r.expCmdSN;
    return r;
  }

  /** NOP-Out ping (non-immediate, takes a CmdSN): the NOP-In, or undefined if none came in `timeoutMs`. */
  async ping(timeoutMs = 3000, cmdSN?: number): Promise<TargetPduView | undefined> {
    const itt = this.itt();
    const sn = cmdSN ?? this.cmdSN;
    if (cmdSN === undefined) this.cmdSN = (this.cmdSN + 1) >>> 0;
    this.send(rawPdu({ opcode: 0x00, flags: 0x80, bytes8: lun0(), itt, word20: RESERVED, word24: sn, word28: this.expStatSN, data: Buffer.from('ping') }));
    for (;;) {
      const p = await this.next(timeoutMs);
      if (!p) return undefined;
      if (p.opcode === 0x20 && p.itt === itt) {
        this.track(p);
        return p;
      }
      throw new Error(`unexpected PDU opcode 0x${p.opcode.toString(16)} while waiting for a NOP-In`);
    }
  }

  /** Sends a SCSI command PDU; returns its ITT. */
  sendCommand(cdb: Buffer, o: { read?: boolean; write?: boolean; edtl: number; cmdSN?: number; itt?: number; lun?: Buffer }): number {
    const itt = o.itt ?? this.itt();
    const sn = o.cmdSN ?? this.cmdSN;
    if (o.cmdSN === undefined) this.cmdSN = (this.cmdSN + 1) >>> 0;
    const bytes32 = Buffer.alloc(16);
    cdb.copy(bytes32, 0, 0, 16);
    this.send(rawPdu({
      opcode: 0x01, flags: 0x80 | (o.read ? 0x40 : 0) | (o.write ? 0x20 : 0) | 0x01 /* simple task attribute */, bytes8: o.lun ?? lun0(), itt,
      word20: o.edtl, word24: sn, word28: this.expStatSN, bytes32,
    }));
    return itt;
  }

  /** Collects the answer to a command: Data-In PDUs up to one with the S bit, or a SCSI Response. */
  async collect(itt: number, timeoutMs = 5000): Promise<CommandResult> {
    const pdus: TargetPduView[] = [];
    const chunks: Buffer[] = [];
    for (;;) {
      const p = await this.expect(`the answer to ITT 0x${itt.toString(16)}`, timeoutMs);
      if (p.itt !== itt) throw new Error(`unexpected PDU opcode 0x${p.opcode.toString(16)} for ITT 0x${p.itt.toString(16)}`);
      pdus.push(p);
      if (p.opcode === 0x25) {
        chunks.push(p.data);
        if (p.flags & 0x01) {
          this.track(p);
          return { status: p.byte3, data: Buffer.concat(chunks), pdus, residualFlags: p.flags & 0x06, residual: p.word44 };
        }
      } else if (p.opcode === 0x21) {
        this.track(p);
        return { status: p.byte3, data: Buffer.concat(chunks), pdus, residualFlags: p.flags & 0x06, residual: p.word44 };
      } else {
        throw new Error(`unexpected PDU opcode 0x${p.opcode.toString(16)} in the answer to a command`);
      }
    }
  }

  async inquiry(allocation = 96): Promise<CommandResult> {
    const itt = this.sendCommand(Buffer.from([0x12, 0, 0, allocation >> 8, allocation & 0xff, 0]), { read: true, edtl: allocation });
    return this.collect(itt);
  }

  async read10(lba: number, blocks: number, blockSize: number): Promise<CommandResult> {
    const cdb = Buffer.alloc(10);
    cdb[0] = 0x28;
    cdb.writeUInt32BE(lba, 2);
    cdb.writeUInt16BE(blocks, 7);
    const itt = this.sendCommand(cdb, { read: true, edtl: blocks * blockSize });
    return this.collect(itt);
  }

  /** A Data-Out PDU for `itt`. */
  dataOut(o: { itt: number; ttt: number; dataSN: number; offset: number; data: Buffer; final: boolean; lun?: Buffer }): void {
    this.send(rawPdu({
      opcode: 0x05, flags: o.final ? 0x80 : 0, bytes8: o.lun ?? lun0(), itt: o.itt, word20: o.ttt, word28: this.expStatSN,
      word36: o.dataSN, word40: o.offset, data: o.data,
    }));
  }

  /** WRITE(10) of `data`, answering the target's R2Ts with in-order Data-Out PDUs; returns the SCSI status. */
  async write10(lba: number, data: Buffer, blockSize: number): Promise<CommandResult> {
    const cdb = Buffer.alloc(10);
    cdb[0] = 0x2a;
    cdb.writeUInt32BE(lba, 2);
    cdb.writeUInt16BE(data.length / blockSize, 7);
    const itt = this.sendCommand(cdb, { write: true, edtl: data.length });
    for (;;) {
      const p = await this.expect('an R2T or the SCSI Response');
      if (p.opcode === 0x31 && p.itt === itt) {
        const offset = p.word40;
        const length = p.word44;
        for (let at = 0, sn = 0; at < length; at += 8192, sn++) {
          const n = Math.min(8192, length - at);
          this.dataOut({ itt, ttt: p.word20, dataSN: sn, offset: offset + at, data: data.subarray(offset + at, offset + at + n), final: at + n >= length });
        }
        continue;
      }
      if (p.opcode === 0x21 && p.itt === itt) {
        this.track(p);
        return { status: p.byte3, data: Buffer.alloc(0), pdus: [p], residualFlags: p.flags & 0x06, residual: p.word44 };
      }
      throw new Error(`unexpected PDU opcode 0x${p.opcode.toString(16)} during a WRITE`);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
