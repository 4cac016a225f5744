/**
 * An iSCSI session (one connection: MaxConnections=1) and what the connections share through the target:
 * the command window, one nexus per logical unit, the target-wide operations (resets, REPORT LUNS).
 */
import { snAdd } from './pdu.js';
import type { Connection } from './connection.js';
import type { LoginConfig } from './login.js';
import type { Nexus, SharedUnit } from './nexus.js';

export interface TargetOptions {
  maxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  maxOutstandingR2T: number;
  /** Commands the initiator may have outstanding (the CmdSN window). */
  queueDepth: number;
  /** A connection silent this long gets a NOP-In; twice this long with no answer, it is dropped. Login must finish within it. */
  idleTimeoutMs: number;
  /** Timeout handed to the logical unit's Transport per command. */
  commandTimeoutMs: number;
}

/** What a connection needs of the target around it. */
export interface TargetContext {
  options: TargetOptions;
  loginConfig: LoginConfig;
  log(e: Record<string, unknown>): void;
  createSession(c: Connection, init: { isid: Buffer; initiatorName: string; discovery: boolean; cmdSN: number }): Session;
  connectionClosed(c: Connection, s: Session | undefined): Promise<void>;
  reportLuns(cdb: Buffer): Buffer | undefined;
  abortAll(lun: number): void;
  targetReset(cold: boolean, from: Session): Promise<void>;
  /** The unit stopped answering (power cut): drop every connection using it. */
  onUnitGone(lun: number): void;
}

export class Session {
  expCmdSN: number;
  readonly pending = new Map<number, () => void>();
  private readonly nexuses = new Map<number, Nexus>();

  constructor(
    readonly tsih: number,
    readonly isid: Buffer,
    readonly initiatorName: string,
    readonly discovery: boolean,
    cmdSN: number,
    private readonly queueDepth: number,
    units: SharedUnit[],
    readonly connection: Connection,
  ) {
    this.expCmdSN = cmdSN;
    if (!discovery) for (const u of units) this.nexuses.set(u.lun, u.open(`${initiatorName},i,0x${isid.toString('hex')}`));
  }

  get maxCmdSN(): number {
    return snAdd(this.expCmdSN, this.queueDepth - 1);
  }

  advance(): void {
    this.expCmdSN = snAdd(this.expCmdSN, 1);
  }

  nexus(lun: number): Nexus | undefined {
    return this.nexuses.get(lun);
  }

  async close(): Promise<void> {
    this.pending.clear();
    for (const n of this.nexuses.values()) await n.close();
    this.nexuses.clear();
  }
}
