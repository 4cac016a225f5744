/**
 * An iSCSI target (RFC 7143) in front of SCSI Transports: `IscsiTarget.listen` serves each logical unit's
 * Transport (for mocopy, the emulator's drives) to real initiators — the Linux kernel, QEMU, libiscsi, the
 * Windows initiator. It knows PDUs, sessions and tasks; what a command does is the Transport's business.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Transport } from '../scsi/transport.js';
import { Connection } from './connection.js';
import { SharedUnit } from './nexus.js';
import { Session, type TargetContext, type TargetOptions } from './session.js';
import { targetTable } from './text.js';

export interface IscsiLun {
  lun: number;
  transport: Transport;
  /** The loaded medium's block size (for CDBs that count blocks); undefined with no medium. */
  blockSize(): number | undefined;
}

export interface IscsiTargetConfig {
  iqn: string;
  luns: IscsiLun[];
  host?: string;
  port?: number;
  chap?: { user: string; secret: Buffer };
  /** Offer CRC32C header and data digests (default yes). */
  digests?: boolean;
  options?: Partial<TargetOptions>;
  /** One event per line (login, reject, drop, task management…); default: none. */
  log?: (e: Record<string, unknown>) => void;
  /**
   * The drives were just switched on: each initiator port's first command to each LUN gets POWER ON OCCURRED
   * (29/00), as from a real drive after power-up (default no: most tests want a unit without attentions).
   */
  powerOnAttention?: boolean;
}

export const DEFAULT_TARGET_OPTIONS: TargetOptions = {
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 1 << 20,
  firstBurstLength: 262144,
  maxOutstandingR2T: 1,
  queueDepth: 64,
  idleTimeoutMs: 30_000,
  commandTimeoutMs: 60_000,
};

export const DEFAULT_ISCSI_PORT = 3260;
const IQN = /^(iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(:[^\s]+)?|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$/;

export function isValidIqn(s: string): boolean {
  return IQN.test(s) && s.length <= 223;
}

export class IscsiTarget implements TargetContext {
  readonly options: TargetOptions;
  readonly units: SharedUnit[];
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Set<Session>();
  private nextTsih = 1;
  private nextConnection = 1;
  loginConfig!: TargetContext['loginConfig'];
  readonly log: (e: Record<string, unknown>) => void;

  private constructor(private readonly cfg: IscsiTargetConfig) {
    if (!isValidIqn(cfg.iqn)) throw new TypeError(`not an iSCSI name: "${cfg.iqn}" (e.g. iqn.2026-11.org.example:mo)`);
    const lunNumbers = new Set(cfg.luns.map((l) => l.lun));
    if (lunNumbers.size !== cfg.luns.length) throw new TypeError('LUN numbers must be distinct');
    this.options = { ...DEFAULT_TARGET_OPTIONS, ...cfg.options };
    this.units = cfg.luns.map((l) => new SharedUnit(l.lun, l.transport, l.blockSize, cfg.powerOnAttention ?? false));
    this.log = cfg.log ?? (() => undefined);
    this.server = createServer((s) => this.accept(s));
  }

  static async listen(cfg: IscsiTargetConfig): Promise<IscsiTarget> {
    const t = new IscsiTarget(cfg);
    await new Promise<void>((resolve, reject) => {
      t.server.once('error', reject);
      t.server.listen(cfg.port ?? DEFAULT_ISCSI_PORT, cfg.host ?? '127.0.0.1', () => resolve());
    });
    const a = t.address;
    t.loginConfig = {
      targetName: cfg.iqn,
      portal: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port},1`,
      ...(cfg.chap ? { chap: cfg.chap } : {}),
      maxRecvDataSegmentLength: t.options.maxRecvDataSegmentLength,
      table: targetTable({ ...t.options, digests: cfg.digests ?? true }),
    };
    return t;
  }

  get address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  get port(): number {
    return this.address.port;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    const c = new Connection(socket, this, this.nextConnection++);
    this.connections.add(c);
    this.log({ event: 'connect', connection: c.id, peer: `${socket.remoteAddress}:${socket.remotePort}` });
  }

  createSession(c: Connection, init: { isid: Buffer; initiatorName: string; discovery: boolean; cmdSN: number }): Session {
    const tsih = this.nextTsih;
    this.nextTsih = this.nextTsih >= 0xffff ? 1 : this.nextTsih + 1;
    // A new session with the same initiator name and ISID replaces the old one (session reinstatement, §6.3.5).
    for (const s of this.sessions) {
      if (s.initiatorName === init.initiatorName && s.isid.equals(init.isid)) s.connection.drop('session reinstated by a new login');
    }
    const s = new Session(tsih, init.isid, init.initiatorName, init.discovery, init.cmdSN, this.options.queueDepth, this.units, c);
    this.sessions.add(s);
    return s;
  }

  async connectionClosed(c: Connection, s: Session | undefined): Promise<void> {
    this.connections.delete(c);
    if (s && this.sessions.delete(s)) await s.close();
  }

  reportLuns(cdb: Buffer): Buffer | undefined {
    const select = cdb[2]!;
    if (select > 2 && select !== 0x10 && select !== 0x11 && select !== 0x12) return undefined;
    const list = select === 1 ? [] : this.units.map((u) => u.lun).sort((a, b) => a - b);
    const out = Buffer.alloc(8 + 8 * list.length);
    out.writeUInt32BE(8 * list.length, 0);
    list.forEach((lun, i) => {
      if (lun < 256) out[8 + i * 8 + 1] = lun;
      else { out[8 + i * 8] = 0x40 | (lun >> 8); out[8 + i * 8 + 1] = lun & 0xff; }
    });
    return out;
  }

  abortAll(lun: number): void {
    for (const c of this.connections) c.abortLun(lun);
  }

  async targetReset(cold: boolean, from: Session): Promise<void> {
    for (const u of this.units) {
      this.abortAll(u.lun);
      await u.reset(0x29, cold ? 0x01 : 0x03, cold ? undefined : from.nexus(u.lun));
    }
    if (cold) for (const s of this.sessions) if (s !== from) s.connection.drop('target cold reset');
  }

  onUnitGone(lun: number): void {
    for (const s of [...this.sessions]) if (s.nexus(lun)) s.connection.drop(`logical unit ${lun} stopped answering (power cut)`);
  }

  /** Stops listening, logs every session out by closing its connection; the Transports stay open (their owner closes them). */
  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const c of [...this.connections]) c.drop('target shutting down');
    for (const s of this.sockets) s.destroy();
    await closed;
    for (const s of [...this.sessions]) {
      this.sessions.delete(s);
      await s.close();
    }
  }
}
