/**
 * One I_T nexus's view of a logical unit: what SPC keeps per initiator rather than per device — pending unit
 * attentions (after a reset another nexus caused) and PREVENT MEDIUM REMOVAL — in front of the one shared
 * Transport. The device sees the medium prevented while any nexus prevents it.
 */
import { Opcode } from '../scsi/cdb.js';
import { buildFixedSense, SenseKey } from '../scsi/sense.js';
import { HostStatus, ScsiStatus, type ScsiCommand, type ScsiResult, type Transport } from '../scsi/transport.js';

/** Commands a pending unit attention does not interrupt (SAM-5 5.14). */
const UA_EXEMPT = new Set<number>([Opcode.INQUIRY, Opcode.REPORT_LUNS, Opcode.REQUEST_SENSE]);

/** The logical unit as the target shares it between nexuses. */
export class SharedUnit {
  readonly nexuses = new Set<Nexus>();
  constructor(readonly lun: number, readonly transport: Transport, readonly blockSize: () => number | undefined) {}

  open(): Nexus {
    const n = new Nexus(this);
    this.nexuses.add(n);
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
    if (this.attentions.length > 0 && !UA_EXEMPT.has(op)) return checkCondition(this.attentions.shift()!);
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

  /** The nexus is gone (logout, connection lost): its prevent no longer holds the medium. */
  async close(): Promise<void> {
    this.unit.nexuses.delete(this);
    if (this.prevent) {
      this.prevent = false;
      await this.unit.syncPrevent();
    }
  }
}

export function checkCondition(sense: Buffer): ScsiResult {
  return { status: ScsiStatus.CHECK_CONDITION, hostStatus: HostStatus.OK, driverStatus: 0, sense, residual: 0, durationUs: 0 };
}
