/**
 * One iSCSI connection (RFC 7143): frames PDUs from the socket by their length fields, runs the login, then
 * dispatches full-feature PDUs by opcode to one handler each. At error recovery level 0 any protocol error
 * drops the connection (after a Reject where the RFC asks for one); nothing the peer sends sizes a buffer
 * beyond the negotiated limits. The SCSI side is the logical unit's Transport, behind the session's nexus.
 */
import type { Socket } from 'node:net';
import { buildFixedSense, SenseKey } from '../scsi/sense.js';
import { cdbLength, transferOf } from '../scsi/transfer-length.js';
import { HostStatus, ScsiStatus, type DataDirection, type ScsiResult } from '../scsi/transport.js';
import { LoginExchange, loginRequestOf, LoginStatus, Stage } from './login.js';
import { checkCondition, type Nexus } from './nexus.js';
import {
  BHS_BYTES, decodePdu, encodePdu, lunField, lunOf, MAX_DATA_SEGMENT, Op, PduFormatError, RejectReason, RESERVED_TAG, snAdd, snLess, TOp,
  wireLength, type InitiatorPdu, type TargetPdu,
} from './pdu.js';
import type { Session, TargetContext } from './session.js';
import { decodeText, encodeText, type KeyValues } from './text.js';

/** Largest SCSI data transfer one task may ask for (bounds every task buffer). */
export const MAX_TASK_BYTES = 16 << 20;
/** Read buffers up to this size are pooled per connection, at most POOL_PER_SIZE of each size. */
const POOLED_MAX = 1 << 20;
const POOL_PER_SIZE = 64;
/** Login PDUs carry at most this much text (RFC 7143 §6.1: 8192 unless negotiated). */
const LOGIN_DATA_LIMIT = 8192;

interface R2tState {
  ttt: number;
  offset: number;
  length: number;
  received: number;
  nextDataSN: number;
}

interface Task {
  itt: number;
  lun: number;
  nexus: Nexus | undefined;
  cdb: Buffer;
  edtl: number;
  read: boolean;
  write: boolean;
  /** Write data as it arrives (EDTL bytes). */
  buffer: Buffer | undefined;
  received: number;
  /** Bytes the initiator may send unsolicited (immediate + Data-Out without R2T). */
  unsolicited: number;
  unsolicitedDataSN: number;
  r2ts: Map<number, R2tState>;
  /** Next offset to ask for with an R2T. */
  nextR2tOffset: number;
  r2tSN: number;
  admitted: boolean;
  executing: boolean;
  aborted: boolean;
  /** Answer without executing (a mismatch found on arrival), once the unsolicited data is in. */
  early: ScsiResult | undefined;
}

type Handler = (p: InitiatorPdu) => void | Promise<void>;

export class Connection {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private statSN = 0;
  private login: LoginExchange;
  private session: Session | undefined;
  private readonly tasks = new Map<number, Task>();
  private nextTtt = 1;
  private closed = false;
  private lastHeard = Date.now();
  private keepAlive: NodeJS.Timeout | undefined;
  private pendingPing: number | undefined;
  /** The first login request sets the StatSN the connection starts from; later ones only carry CmdSN. */
  private loginFirst = true;
  private loginCmdSN = 0;
  private readonly handlers: Record<number, Handler>;
  readonly id: number;

  constructor(private readonly socket: Socket, private readonly ctx: TargetContext, id: number) {
    this.id = id;
    this.login = new LoginExchange(ctx.loginConfig);
    this.handlers = {
      [Op.LOGIN]: (p) => this.onLogin(p),
      [Op.TEXT]: (p) => this.onText(p),
      [Op.SCSI_COMMAND]: (p) => this.onCommand(p),
      [Op.DATA_OUT]: (p) => this.onDataOut(p),
      [Op.NOP_OUT]: (p) => this.onNopOut(p),
      [Op.TASK_MGMT]: (p) => this.onTaskManagement(p),
      [Op.LOGOUT]: (p) => this.onLogout(p),
      [Op.SNACK]: (p) => this.reject(p, RejectReason.SNACK_REJECT), // error recovery level 0
    };
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (e) => this.drop(`socket error: ${e.message}`));
    socket.on('close', () => this.drop('connection closed by the initiator'));
    this.keepAlive = setInterval(() => this.tick(), Math.max(250, Math.floor(ctx.options.idleTimeoutMs / 4)));
    this.keepAlive.unref();
  }

  get params() {
    return this.login.params;
  }

  // ---------------------------------------------------------------- framing

  private onData(d: Buffer): void {
    if (this.closed) return; // dropped: what the peer still sends before the socket is destroyed is not kept
    this.lastHeard = Date.now();
    this.chunks.push(d);
    this.buffered += d.length;
    while (!this.closed && this.buffered >= BHS_BYTES) {
      const head = this.peek(BHS_BYTES);
      const limit = this.session ? this.ctx.options.maxRecvDataSegmentLength : LOGIN_DATA_LIMIT;
      const dataLength = head.readUIntBE(5, 3);
      if (dataLength > limit || head[4]! > 64) {
        // Never buffer what the peer was not allowed to send.
        this.reject(undefined, RejectReason.PROTOCOL_ERROR, head);
        this.drop(`data segment of ${dataLength} bytes exceeds the negotiated ${limit}`);
        return;
      }
      const total = wireLength(head, this.params.headerDigest && !!this.session, this.params.dataDigest && !!this.session);
      if (this.buffered < total) return;
      const wire = this.take(total);
      let pdu: InitiatorPdu;
      try {
        pdu = decodePdu(wire, this.params.headerDigest && !!this.session, this.params.dataDigest && !!this.session);
      } catch (e) {
        const reason = e instanceof PduFormatError ? e.reason : RejectReason.PROTOCOL_ERROR;
        if (reason === RejectReason.DATA_DIGEST) this.reject(undefined, reason, wire.subarray(0, BHS_BYTES));
        this.drop(`malformed PDU: ${(e as Error).message}`);
        return;
      }
      this.dispatch(pdu);
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    return Buffer.concat(this.chunks, this.buffered).subarray(0, n);
  }

  private take(n: number): Buffer {
    let out: Buffer;
    if (this.chunks[0]!.length >= n) {
      out = this.chunks[0]!.subarray(0, n);
      const rest = this.chunks[0]!.subarray(n);
      if (rest.length) this.chunks[0] = rest;
      else this.chunks.shift();
    } else {
      const all = Buffer.concat(this.chunks, this.buffered);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }

  private dispatch(p: InitiatorPdu): void {
    if (!this.session && p.opcode !== Op.LOGIN) {
      this.drop(`opcode 0x${p.opcode.toString(16)} before login completed`);
      return;
    }
    const handler = this.handlers[p.opcode];
    if (!handler) {
      this.reject(p, RejectReason.NOT_SUPPORTED);
      return;
    }
    try {
      const r = handler(p);
      if (r) r.catch((e) => this.internalError(e));
    } catch (e) {
      this.internalError(e);
    }
  }

  private internalError(e: unknown): void {
    this.ctx.log({ event: 'internal-error', connection: this.id, error: (e as Error)?.message ?? String(e) });
    this.drop('internal error');
  }

  // ---------------------------------------------------------------- sending

  /**
   * Writes a PDU. Writes of one event-loop turn go out together (cork now, uncork on the next tick): replies
   * that complete together share one writev. `written` runs once the socket has taken the bytes.
   */
  private send(p: TargetPdu, countsStatSN: boolean, written?: () => void): void {
    if (this.closed) return;
    const s = this.session;
    if (countsStatSN) {
      p.statSN = this.statSN;
      this.statSN = snAdd(this.statSN, 1);
    } else if (p.statSN === undefined) {
      p.statSN = this.statSN;
    }
    const digests = !!s;
    const pieces = encodePdu(p, digests && this.params.headerDigest, digests && this.params.dataDigest);
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    for (let i = 0; i < pieces.length; i++) this.socket.write(pieces[i]!, i === pieces.length - 1 ? written : undefined);
  }

  private corked = false;
  /** Read buffers by size, reused once the socket has written them (a fresh buffer per READ fed the GC). */
  private readonly pool = new Map<number, Buffer[]>();

  private acquire(size: number): Buffer {
    return this.pool.get(size)?.pop() ?? Buffer.allocUnsafe(size);
  }

  private release(b: Buffer): void {
    if (b.length > POOLED_MAX) return;
    const list = this.pool.get(b.length) ?? [];
    if (list.length < POOL_PER_SIZE) list.push(b);
    this.pool.set(b.length, list);
  }

  private windowFields(): { expCmdSN: number; maxCmdSN: number } {
    const s = this.session;
    if (!s) return { expCmdSN: this.loginCmdSN, maxCmdSN: this.loginCmdSN };
    return { expCmdSN: s.expCmdSN, maxCmdSN: s.maxCmdSN };
  }

  private reject(p: InitiatorPdu | undefined, reason: number, header?: Buffer): void {
    this.ctx.log({ event: 'reject', connection: this.id, reason, opcode: p?.opcode });
    this.send({ opcode: TOp.REJECT, flags: 0x80, byte2: reason, itt: RESERVED_TAG, ...this.windowFields(), data: Buffer.from(header ?? p!.header) }, true);
  }

  // ---------------------------------------------------------------- login

  private onLogin(p: InitiatorPdu): void {
    if (this.session) {
      this.reject(p, RejectReason.PROTOCOL_ERROR);
      this.drop('login request in full feature phase');
      return;
    }
    const req = loginRequestOf(p, decodeText(p.data));
    if (req.cont) {
      // Text spanning several login PDUs is not needed by any initiator we serve: refuse rather than guess.
      this.loginFailed(p, req, LoginStatus.INITIATOR_ERROR);
      return;
    }
    if (this.loginFirst) {
      this.statSN = p.expStatSN;
      this.loginFirst = false;
    }
    this.loginCmdSN = p.cmdSN;
    if (req.tsih !== 0) {
      // Adding a connection to an existing session needs MaxConnections > 1: not offered.
      this.loginFailed(p, req, LoginStatus.INITIATOR_ERROR);
      return;
    }
    const res = this.login.step(req);
    let tsih = 0;
    if (res.status === LoginStatus.SUCCESS && this.login.complete) {
      this.session = this.ctx.createSession(this, { isid: req.isid, initiatorName: this.login.initiatorName!, discovery: this.login.sessionType === 'Discovery', cmdSN: p.cmdSN });
      tsih = this.session.tsih;
    }
    const bytes8 = Buffer.alloc(8);
    req.isid.copy(bytes8, 0);
    bytes8.writeUInt16BE(tsih, 6);
    const flags = (res.transit ? 0x80 : 0) | (res.csg << 2) | (res.transit ? res.nsg : 0);
    this.send({
      opcode: TOp.LOGIN_RESPONSE, flags, byte2: 0, byte3: 0, bytes8, itt: p.itt,
      expCmdSN: this.session ? this.session.expCmdSN : p.cmdSN, maxCmdSN: this.session ? this.session.maxCmdSN : p.cmdSN,
      word36: (res.status << 16) >>> 0, data: encodeText(res.keys),
    }, true);
    this.ctx.log({
      event: 'login', connection: this.id, stage: res.csg, next: res.nsg, status: res.status, initiator: this.login.initiatorName, complete: this.login.complete,
      ...(this.login.complete ? { session: this.login.sessionType, headerDigest: this.params.headerDigest, dataDigest: this.params.dataDigest, maxRecv: this.params.initiatorMaxRecv, initialR2T: this.params.initialR2T } : {}),
    });
    if (res.status !== LoginStatus.SUCCESS) this.drop(`login failed with status 0x${res.status.toString(16).padStart(4, '0')}`);
  }

  private loginFailed(p: InitiatorPdu, req: { isid: Buffer; csg: number }, status: number): void {
    const bytes8 = Buffer.alloc(8);
    req.isid.copy(bytes8, 0);
    this.send({ opcode: TOp.LOGIN_RESPONSE, flags: req.csg << 2, bytes8, itt: p.itt, expCmdSN: p.cmdSN, maxCmdSN: p.cmdSN, word36: (status << 16) >>> 0 }, true);
    this.drop(`login failed with status 0x${status.toString(16)}`);
  }

  // ---------------------------------------------------------------- command numbering

  /**
   * Runs `fn` in CmdSN order: immediate PDUs at once, others when their CmdSN is the expected one (later ones
   * in the window wait for the gap to fill); CmdSNs outside the window are dropped silently (RFC 7143 §4.2.2.1).
   */
  private admit(p: InitiatorPdu, fn: () => void): boolean {
    const s = this.session!;
    if (p.immediate) {
      fn();
      return true;
    }
    if (p.cmdSN === s.expCmdSN) {
      s.advance();
      fn();
      let next: (() => void) | undefined;
      while ((next = s.pending.get(s.expCmdSN))) {
        s.pending.delete(s.expCmdSN);
        s.advance();
        next();
      }
      return true;
    }
    if (snLess(s.expCmdSN, p.cmdSN) && !snLess(s.maxCmdSN, p.cmdSN) && !s.pending.has(p.cmdSN)) {
      s.pending.set(p.cmdSN, fn);
      return true;
    }
    this.ctx.log({ event: 'cmdsn-dropped', connection: this.id, cmdSN: p.cmdSN, expCmdSN: s.expCmdSN, maxCmdSN: s.maxCmdSN, opcode: p.opcode });
    return false;
  }

  // ---------------------------------------------------------------- text (SendTargets)

  private onText(p: InitiatorPdu): void {
    this.admit(p, () => {
      const keys = decodeText(p.data);
      const answer: KeyValues = [];
      for (const [k, v] of keys) {
        if (k === 'SendTargets') {
          if (v === 'All' || v === this.ctx.loginConfig.targetName || (v === '' && !this.session!.discovery)) {
            answer.push(['TargetName', this.ctx.loginConfig.targetName], ['TargetAddress', this.ctx.loginConfig.portal]);
          }
        } else {
          answer.push([k, 'NotUnderstood']);
        }
      }
      this.send({ opcode: TOp.TEXT_RESPONSE, flags: 0x80, lun: p.lun, itt: p.itt, word20: RESERVED_TAG, ...this.windowFields(), data: encodeText(answer) }, true);
    });
  }

  // ---------------------------------------------------------------- NOP

  private onNopOut(p: InitiatorPdu): void {
    if (p.itt === RESERVED_TAG) {
      // The answer to our NOP-In ping: no response, no CmdSN.
      if (p.word20 === this.pendingPing) this.pendingPing = undefined;
      return;
    }
    this.admit(p, () => {
      this.send({ opcode: TOp.NOP_IN, flags: 0x80, lun: p.lun, itt: p.itt, word20: RESERVED_TAG, ...this.windowFields(), data: p.data.length ? Buffer.from(p.data) : undefined }, true);
    });
  }

  private tick(): void {
    const idle = Date.now() - this.lastHeard;
    const limit = this.ctx.options.idleTimeoutMs;
    if (!this.session) {
      if (idle > limit) this.drop(`login not completed within ${limit} ms`);
      return;
    }
    if (this.buffered > 0 && idle > limit) {
      this.drop(`a PDU stalled for ${idle} ms`);
      return;
    }
    if (this.pendingPing !== undefined && idle > limit) {
      this.drop(`no answer to a NOP-In in ${limit} ms`);
      return;
    }
    if (this.pendingPing === undefined && idle > limit / 2) {
      // Keep-alive: a NOP-In asking for a NOP-Out; a dead peer is noticed within the idle limit.
      this.pendingPing = this.nextTtt++;
      this.send({ opcode: TOp.NOP_IN, flags: 0x80, itt: RESERVED_TAG, word20: this.pendingPing, ...this.windowFields() }, false);
    }
  }

  // ---------------------------------------------------------------- SCSI commands

  private onCommand(p: InitiatorPdu): void {
    const s = this.session!;
    if (s.discovery) {
      this.reject(p, RejectReason.PROTOCOL_ERROR);
      this.drop('SCSI command in a discovery session');
      return;
    }
    if (p.ahsLength > 0) {
      // Extended CDBs (> 16 bytes) are not used by any command the drives implement.
      this.reject(p, RejectReason.NOT_SUPPORTED);
      return;
    }
    if (this.tasks.has(p.itt)) {
      this.reject(p, RejectReason.TASK_IN_PROGRESS);
      return;
    }
    const read = !!(p.flags & 0x40);
    const write = !!(p.flags & 0x20);
    const edtl = p.word20;
    if (write && p.dataLength > edtl) {
      this.reject(p, RejectReason.PROTOCOL_ERROR);
      this.drop('immediate data beyond the expected data transfer length');
      return;
    }
    if (p.dataLength > 0 && (!write || !this.params.immediateData)) {
      this.reject(p, RejectReason.PROTOCOL_ERROR);
      this.drop('immediate data where none is allowed');
      return;
    }
    const op = p.header[32]!;
    const cdb = Buffer.from(p.header.subarray(32, 32 + cdbLength(op)));
    const lun = lunOf(p.lun) ?? -1;
    const task: Task = {
      itt: p.itt, lun, nexus: s.nexus(lun), cdb, edtl, read, write, buffer: undefined, received: 0, unsolicited: 0, unsolicitedDataSN: 0,
      r2ts: new Map(), nextR2tOffset: 0, r2tSN: 0, admitted: false, executing: false, aborted: false, early: undefined,
    };
    if (write) {
      if (edtl > MAX_TASK_BYTES) {
        task.early = checkCondition(buildFixedSense(SenseKey.ILLEGAL_REQUEST, 0x55, 0x00)); // system resource failure
      } else {
        task.buffer = Buffer.allocUnsafe(edtl);
      }
      if (task.buffer) p.data.copy(task.buffer, 0);
      task.received = p.dataLength;
      task.unsolicited = this.params.initialR2T ? p.dataLength : Math.min(this.params.firstBurstLength, edtl);
      task.nextR2tOffset = task.unsolicited;
      // A write whose CDB length and expected transfer length differ: refused once the unsolicited data is in.
      const t = task.nexus ? transferOf(cdb, task.nexus.unit.blockSize()) : undefined;
      if (!task.early && t && t.bytes !== edtl) task.early = checkCondition(buildFixedSense(SenseKey.ILLEGAL_REQUEST, 0x0e, 0x03));
    }
    this.tasks.set(p.itt, task);
    if (!this.admit(p, () => { task.admitted = true; this.proceed(task); })) this.tasks.delete(p.itt);
  }

  private onDataOut(p: InitiatorPdu): void {
    const task = this.tasks.get(p.itt);
    if (!task || !task.write) {
      // Data for a task that ended (aborted, or answered early): nothing to do at ERL 0.
      this.ctx.log({ event: 'data-out-unknown-task', connection: this.id, itt: p.itt });
      return;
    }
    const offset = p.header.readUInt32BE(40);
    const dataSN = p.header.readUInt32BE(36);
    const ttt = p.word20;
    let r2t: R2tState | undefined;
    if (ttt === RESERVED_TAG) {
      if (dataSN !== task.unsolicitedDataSN || offset !== task.received || offset + p.dataLength > task.unsolicited) {
        this.drop(`unsolicited Data-Out out of sequence (DataSN ${dataSN}, offset ${offset})`);
        return;
      }
      task.unsolicitedDataSN++;
    } else {
      r2t = task.r2ts.get(ttt);
      if (!r2t || dataSN !== r2t.nextDataSN || offset !== r2t.offset + r2t.received || r2t.received + p.dataLength > r2t.length) {
        this.drop(`Data-Out out of sequence (TTT ${ttt}, DataSN ${dataSN}, offset ${offset})`);
        return;
      }
      r2t.nextDataSN++;
      r2t.received += p.dataLength;
    }
    if (offset + p.dataLength > task.edtl) {
      this.drop('Data-Out beyond the expected data transfer length');
      return;
    }
    if (task.buffer) p.data.copy(task.buffer, offset);
    task.received += p.dataLength;
    if (r2t && r2t.received === r2t.length) task.r2ts.delete(ttt);
    if (task.admitted) this.proceed(task);
  }

  /** Moves a task on: ask for more data, answer early, or execute. */
  private proceed(task: Task): void {
    if (task.executing || task.aborted) return;
    if (task.write && task.received < task.unsolicited) return; // unsolicited data still on its way
    if (task.early) {
      this.finish(task, task.early, 0);
      return;
    }
    if (task.write && task.received < task.edtl) {
      while (task.r2ts.size < this.params.maxOutstandingR2T && task.nextR2tOffset < task.edtl) {
        const length = Math.min(this.params.maxBurstLength, task.edtl - task.nextR2tOffset);
        const r: R2tState = { ttt: this.nextTtt++ >>> 0, offset: task.nextR2tOffset, length, received: 0, nextDataSN: 0 };
        if (r.ttt === RESERVED_TAG) r.ttt = this.nextTtt++ >>> 0;
        task.r2ts.set(r.ttt, r);
        task.nextR2tOffset += length;
        this.send({ opcode: TOp.R2T, flags: 0x80, lun: lunField(task.lun), itt: task.itt, word20: r.ttt, ...this.windowFields(), word36: task.r2tSN++, word40: r.offset, word44: length }, false);
      }
      return;
    }
    task.executing = true;
    void this.execute(task);
  }

  private async execute(task: Task): Promise<void> {
    let result: ScsiResult;
    let bufLen = 0;
    let data: Buffer | undefined;
    let direction: DataDirection = 'none';
    let pooledRead = false;
    const byTarget = task.cdb[0] === 0xa0 || !task.nexus ? this.targetAnswer(task) : undefined;
    if (byTarget && task.nexus && byTarget.result.status === ScsiStatus.GOOD) {
      // The target lists every LUN, but the drive must see the command too: its state (a pending unit attention,
      // the sense of an earlier command) moves on as it would on a bus.
      const probe = Buffer.allocUnsafe(16);
      await this.run(task, 'in', probe);
    }
    if (byTarget) {
      ({ result, data } = byTarget);
      bufLen = data?.length ?? 0;
      direction = 'in';
    } else {
      // The CDB decides which way data moves; the PDU's R/W flags only say what the initiator sends or takes.
      const t = transferOf(task.cdb, task.nexus!.unit.blockSize());
      const cdbWrites = t ? t.direction === 'out' : task.write;
      if (cdbWrites && !task.write && (t?.bytes ?? 0) > 0) {
        result = checkCondition(buildFixedSense(SenseKey.ILLEGAL_REQUEST, 0x0e, 0x03)); // data-out command without data
      } else if (cdbWrites) {
        data = task.buffer;
        bufLen = task.edtl;
        direction = bufLen > 0 ? 'out' : 'none';
        result = await this.run(task, direction, bufLen ? data : undefined);
        bufLen = 0;
      } else {
        bufLen = Math.min(MAX_TASK_BYTES, t ? t.bytes : task.read ? task.edtl : 0);
        direction = bufLen > 0 ? 'in' : 'none';
        // Only the bytes the drive moved (bufLen - residual, from offset 0) are ever sent: no need to zero it.
        data = bufLen > 0 ? this.acquire(bufLen) : undefined;
        pooledRead = !!data;
        result = await this.run(task, direction, data);
      }
    }
    if (task.aborted || this.closed) return;
    if (result.hostStatus === HostStatus.TIME_OUT) {
      // The drive never answered (a fault the emulator can inject): neither does the target; the initiator
      // will time out and abort the task, as with a real drive.
      return;
    }
    if (result.hostStatus !== HostStatus.OK) {
      if (result.hostStatus === HostStatus.NO_CONNECT) {
        // The drive lost power: the initiator sees the connection go, as with a real target losing power.
        this.ctx.onUnitGone(task.lun);
        return;
      }
      result = checkCondition(buildFixedSense(SenseKey.HARDWARE_ERROR, 0x44, 0x00)); // internal target failure
    }
    const moved = direction === 'in' ? bufLen - result.residual : 0;
    this.finish(task, result, moved, data, pooledRead);
  }

  private async run(task: Task, direction: DataDirection, data: Buffer | undefined): Promise<ScsiResult> {
    try {
      return await task.nexus!.execute({ cdb: task.cdb, direction, ...(data ? { data } : {}), timeoutMs: this.ctx.options.commandTimeoutMs });
    } catch (e) {
      // A command the device refuses to even take (a malformed CDB, a closed drive): INVALID FIELD IN CDB.
      this.ctx.log({ event: 'command-refused', connection: this.id, error: (e as Error).message });
      return checkCondition(buildFixedSense(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00));
    }
  }

  /**
   * What the target answers itself: REPORT LUNS (every LUN it serves, whichever LUN was addressed) and commands
   * to a LUN that does not exist (SPC-5 4.5.1): INQUIRY says "no device here", anything else 05/25/00.
   */
  private targetAnswer(task: Task): { result: ScsiResult; data?: Buffer } {
    const good = (data: Buffer) => ({ result: { status: ScsiStatus.GOOD, hostStatus: HostStatus.OK, driverStatus: 0, sense: Buffer.alloc(0), residual: 0, durationUs: 0 }, data });
    if (task.cdb[0] === 0xa0) {
      const answer = this.ctx.reportLuns(task.cdb);
      return answer ? good(answer) : { result: checkCondition(buildFixedSense(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00, { fieldPointer: { commandData: true, field: 2 } })) };
    }
    if (task.cdb[0] === 0x12 && !(task.cdb[1]! & 1)) {
      const inq = Buffer.alloc(36);
      inq[0] = 0x7f; // peripheral qualifier 3, type 1Fh
      inq[2] = 0x06;
      inq[3] = 0x02;
      inq[4] = 31;
      return good(inq.subarray(0, Math.min(36, task.cdb.readUInt16BE(3))));
    }
    return { result: checkCondition(buildFixedSense(SenseKey.ILLEGAL_REQUEST, 0x25, 0x00)) };
  }

  /** Data-In (phase-collapsed status when GOOD) or a SCSI Response with sense; residuals against EDTL. */
  private finish(task: Task, r: ScsiResult, moved: number, data?: Buffer, pooled = false): void {
    this.tasks.delete(task.itt);
    const done = pooled && data ? () => this.release(data) : undefined;
    const good = r.status === ScsiStatus.GOOD;
    const sendable = task.read ? Math.min(moved, task.edtl) : 0;
    let residualFlags = 0;
    let residual = 0;
    if (task.write) {
      // A refused write moved nothing; the expected length is what was not used.
      if (!good && task.edtl > 0) { residualFlags = 0x02; residual = task.edtl; }
    } else if (moved > (task.read ? task.edtl : 0)) {
      residualFlags = 0x04; // overflow: the command had more to give than the initiator expected
      residual = moved - (task.read ? task.edtl : 0);
    } else if (task.read && sendable < task.edtl && (good || sendable > 0)) {
      residualFlags = 0x02; // underflow
      residual = task.edtl - sendable;
    } else if (!task.read && task.edtl > 0 && good) {
      residualFlags = 0x02;
      residual = task.edtl;
    }
    const lun = lunField(task.lun < 0 ? 0 : task.lun);
    const maxSeg = this.params.initiatorMaxRecv;
    let dataSN = 0;
    if (sendable > 0 && data) {
      const collapse = good && r.sense.length === 0;
      for (let off = 0; off < sendable; off += maxSeg) {
        const n = Math.min(maxSeg, sendable - off);
        const last = off + n >= sendable;
        const endOfBurst = last || (off + n) % this.params.maxBurstLength === 0;
        const status = last && collapse;
        this.send({
          opcode: TOp.DATA_IN, flags: (endOfBurst ? 0x80 : 0) | (status ? 0x01 | residualFlags : 0), byte3: status ? r.status : 0,
          lun, itt: task.itt, word20: RESERVED_TAG, ...this.windowFields(), word36: dataSN++, word40: off, word44: status ? residual : 0,
          data: data.subarray(off, off + n),
        }, status, last ? done : undefined);
        if (status) return;
      }
    } else {
      done?.();
    }
    let senseData: Buffer | undefined;
    if (r.sense.length > 0) {
      senseData = Buffer.alloc(2 + r.sense.length);
      senseData.writeUInt16BE(r.sense.length, 0);
      r.sense.copy(senseData, 2);
    }
    this.send({
      opcode: TOp.SCSI_RESPONSE, flags: 0x80 | residualFlags, byte2: 0, byte3: r.status, itt: task.itt, ...this.windowFields(),
      word36: dataSN, word44: residual, data: senseData,
    }, true);
  }

  // ---------------------------------------------------------------- task management

  private onTaskManagement(p: InitiatorPdu): void {
    this.admit(p, () => { void this.taskManagement(p).catch((e) => this.internalError(e)); });
  }

  private async taskManagement(p: InitiatorPdu): Promise<void> {
    const fn = p.flags & 0x7f;
    const lun = lunOf(p.lun) ?? -1;
    const s = this.session!;
    let response = 0; // function complete
    switch (fn) {
      case 1: { // ABORT TASK
        const ref = p.word20;
        const task = this.tasks.get(ref);
        const refCmdSN = p.header.readUInt32BE(32);
        if (task) this.abort(task);
        else if (!(snLess(refCmdSN, s.expCmdSN) || refCmdSN === s.expCmdSN || (snLess(s.expCmdSN, refCmdSN) && !snLess(s.maxCmdSN, refCmdSN)))) response = 1;
        break;
      }
      case 2: case 4: // ABORT TASK SET, CLEAR TASK SET
        for (const t of this.tasks.values()) if (t.lun === lun) this.abort(t);
        break;
      case 5: { // LOGICAL UNIT RESET
        const unit = s.nexus(lun)?.unit;
        if (!unit) { response = 2; break; }
        this.ctx.abortAll(lun);
        await unit.reset(0x29, 0x03, s.nexus(lun));
        break;
      }
      case 6: case 7: // TARGET WARM / COLD RESET
        await this.ctx.targetReset(fn === 7, s);
        break;
      case 3: // CLEAR ACA: ACA is never established here
        response = 5;
        break;
      case 8: // TASK REASSIGN needs error recovery level 2
        response = 4;
        break;
      default:
        response = 255;
    }
    this.send({ opcode: TOp.TASK_MGMT_RESPONSE, flags: 0x80, byte2: response, itt: p.itt, ...this.windowFields() }, true);
    this.ctx.log({ event: 'task-management', connection: this.id, function: fn, lun, response });
    if (fn === 7 && response === 0) this.drop('target cold reset');
  }

  /** Aborted: never answered; if not yet sent to the drive, never executed. */
  abort(task: Task): void {
    task.aborted = true;
    this.tasks.delete(task.itt);
  }

  abortLun(lun: number): void {
    for (const t of [...this.tasks.values()]) if (t.lun === lun) this.abort(t);
  }

  // ---------------------------------------------------------------- logout

  private onLogout(p: InitiatorPdu): void {
    this.admit(p, () => {
      const reason = p.flags & 0x7f;
      // 0 close the session, 1 close this connection (the only one), 2 recovery (ERL 2): not supported.
      const response = reason === 0 || reason === 1 ? 0 : 2;
      this.send({ opcode: TOp.LOGOUT_RESPONSE, flags: 0x80, byte2: response, itt: p.itt, ...this.windowFields(), word40: 0 }, true);
      if (response === 0) this.socket.end(() => this.drop('logout'));
    });
  }

  // ---------------------------------------------------------------- teardown

  drop(why: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.keepAlive) clearInterval(this.keepAlive);
    for (const t of this.tasks.values()) t.aborted = true;
    this.tasks.clear();
    this.ctx.log({ event: 'connection-closed', connection: this.id, reason: why });
    if (!this.socket.destroyed) {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
    }
    void this.ctx.connectionClosed(this, this.session);
  }
}

export type { Task };
export { MAX_DATA_SEGMENT };
