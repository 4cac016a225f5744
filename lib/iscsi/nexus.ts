/**
 * One I_T nexus's view of a logical unit: what SPC keeps per initiator rather than per device — pending unit
 * attentions (after a reset another nexus caused), PREVENT MEDIUM REMOVAL, and the SPC-2 reservation of
 * RESERVE(6)/RELEASE(6) — in front of the one shared Transport. The device sees the medium prevented while any
 * nexus prevents it. (Persistent reservations are not offered: MO drives of this class have none.)
 */
import { Opcode } from '../scsi/cdb.js';
import { buildFixedSense, SenseKey } from '../scsi/sense.js';
import { HostStatus, ScsiStatus, type ScsiCommand, type ScsiResult, type Transport } from '../scsi/transport.js';

/** Commands a pending unit attention does not interrupt (SAM-5 5.14). */
const UA_EXEMPT = new Set<number>([Opcode.INQUIRY, Opcode.REPORT_LUNS, Opcode.REQUEST_SENSE]);
const RESERVE_6 = 0x16;
const RELEASE_6 = 0x17;
/** Commands another nexus's reservation does not refuse (SPC-2 5.5.1, table 10). */
const RESERVATION_EXEMPT = new Set<number>([Opcode.INQUIRY, Opcode.REPORT_LUNS, Opcode.REQUEST_SENSE, RELEASE_6, 0x57 /* RELEASE(10) */]);

/** The logical unit as the target shares it between nexuses. */
export class SharedUnit {
  readonly nexuses = new Set<Nexus>();
  /** The nexus holding the RESERVE(6) reservation, if any. */
  reservedBy: Nexus | undefined;
  /** Initiator ports already told of the power-on (when the unit reports one). */
  private readonly toldPowerOn = new Set<string>();
  constructor(readonly lun: number, readonly transport: Transport, readonly blockSize: () => number | undefined, private readonly powerOn = false) {}

  /**
   * A nexus for one initiator port (its iSCSI name and ISID). A unit that reports its power-on gives each port
   * POWER ON OCCURRED (29/00) on its first command, once (SAM-5 sets it for every port at power-on): an initiator
   * that logs in again after the drive lost power learns that writes the drive had cached may be gone.
   */
  open(initiatorPort: string): Nexus {
    const n = new Nexus(this);
    this.nexuses.add(n);
    if (this.powerOn && !this.toldPowerOn.has(initiatorPort)) {
      this.toldPowerOn.add(initiatorPort);
      n.attention(0x29, 0x00);
    }
    return n;
  }

  get prevented(): boolean {
    for (const n of this.nexuses) if (n.prevent) return true;
    return false;
  }

  /** Tells the device the combined prevent state (after a nexus went away or a reset cleared one). */
  async syncPrevent(): Promise<void> {
    const cdb = Buffer.from([Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, this.prevented ? 1 : 0, 0]);
    await this.transport.execute({ cdb, direction: 'none', timeoutMs: 10_000 }).catch(() => undefined);
  }

  /** A reset (LUN or target): every nexus but `except` gets the unit attention; every prevent is dropped. */
  async reset(asc: number, ascq: number, except?: Nexus): Promise<void> {
    for (const n of this.nexuses) {
      n.prevent = false;
      if (n !== except) n.attention(asc, ascq);
    }
    this.reservedBy = undefined;
    await this.syncPrevent();
  }
}

export class Nexus {
  prevent = false;
  private attentions: Buffer[] = [];

  constructor(readonly unit: SharedUnit) {}

  attention(asc: number, ascq: number): void {
    this.attentions.push(buildFixedSense(SenseKey.UNIT_ATTENTION, asc, ascq));
  }

  async execute(cmd: ScsiCommand): Promise<ScsiResult> {
    const op = cmd.cdb[0]!;
    const holder = this.unit.reservedBy;
    if (holder && holder !== this && !RESERVATION_EXEMPT.has(op) && !(op === Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL && (cmd.cdb[4]! & 3) === 0)) return reservationConflict();
    if (this.attentions.length > 0 && !UA_EXEMPT.has(op)) return checkCondition(this.attentions.shift()!);
    if (op === RESERVE_6 || op === RELEASE_6) return this.reservation(op === RESERVE_6, cmd.cdb);
    if (op === Opcode.REQUEST_SENSE && this.attentions.length > 0) {
      // REQUEST SENSE reports (and so clears) this nexus's pending unit attention.
      const sense = this.attentions.shift()!;
      const n = Math.min(sense.length, cmd.data?.length ?? 0, cmd.cdb[4]!);
      if (n > 0) sense.copy(cmd.data!, 0, 0, n);
      return { status: ScsiStatus.GOOD, hostStatus: HostStatus.OK, driverStatus: 0, sense: Buffer.alloc(0), residual: (cmd.data?.length ?? 0) - n, durationUs: 0 };
    }
    if (op === Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL) {
      const was = this.prevent;
      this.prevent = (cmd.cdb[4]! & 3) === 1;
      // The device sees the OR of every nexus; its own checks (e.g. an invalid field) still answer.
      const shared = Buffer.from(cmd.cdb);
      shared[4] = (shared[4]! & ~3) | (this.unit.prevented ? 1 : 0) | (cmd.cdb[4]! & 2);
      const r = await this.unit.transport.execute({ ...cmd, cdb: shared });
      if (r.status !== ScsiStatus.GOOD) this.prevent = was;
      return r;
    }
    return this.unit.transport.execute(cmd);
  }

  /** RESERVE(6) / RELEASE(6) of the whole logical unit; third-party and extent reservations are not supported. */
  private reservation(reserve: boolean, cdb: Uint8Array): ScsiResult {
    if (cdb[1]! & 0x1f) return checkCondition(buildFixedSense(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00, { fieldPointer: { commandData: true, field: 1 } }));
    if (reserve) {
      // Held by another nexus: refused before this point; by this one: reserving again is harmless.
      this.unit.reservedBy = this;
    } else if (this.unit.reservedBy === this) {
      this.unit.reservedBy = undefined;
    }
    return { status: ScsiStatus.GOOD, hostStatus: HostStatus.OK, driverStatus: 0, sense: Buffer.alloc(0), residual: 0, durationUs: 0 };
  }

  /** The nexus is gone (logout, connection lost): its reservation and its prevent no longer hold. */
  async close(): Promise<void> {
    this.unit.nexuses.delete(this);
    if (this.unit.reservedBy === this) this.unit.reservedBy = undefined;
    if (this.prevent) {
      this.prevent = false;
      await this.unit.syncPrevent();
    }
  }
}

export function reservationConflict(): ScsiResult {
  return { status: ScsiStatus.RESERVATION_CONFLICT, hostStatus: HostStatus.OK, driverStatus: 0, sense: Buffer.alloc(0), residual: 0, durationUs: 0 };
}

export function checkCondition(sense: Buffer): ScsiResult {
  return { status: ScsiStatus.CHECK_CONDITION, hostStatus: HostStatus.OK, driverStatus: 0, sense, residual: 0, durationUs: 0 };
}
