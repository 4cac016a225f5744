/**
 * What the HIL suite runs against, from MOCOPY_HIL_RIG (JSON): the same suite drives real devices
 * through the native transport (the QEMU guest, a lab rig) or mocopy's emulator (the host cross-check).
 */
export interface RigTarget {
  /** Device spec: /dev/sgN in the guest, emu-mo:IMAGE on the host. */
  spec: string;
  /** Which real device this stands for, for the cross-check table ('scsi_debug', 'qemu-hd', 'emulator-mo'). */
  role: string;
  /** Block node of the same device, when there is one (guest only). */
  block?: string;
}

export interface Rig {
  mode: 'native' | 'emulator';
  /** The master drive (CD-ROM). */
  cd: { spec: string; role: string; block?: string };
  targets: RigTarget[];
  /** Ledger, station key and original programs for the protocol part. */
  ledger?: string;
  stationKey?: string;
  programs?: Record<string, string>;
  /** sg3_utils are on PATH (guest). */
  sg3?: boolean;
  /** scsi_debug sysfs directory, for the timeout test (guest). */
  scsiDebugSysfs?: string;
  /** Run the benchmarks. */
  bench?: boolean;
  work: string;
}

export function loadRig(): Rig {
  const text = process.env.MOCOPY_HIL_RIG;
  if (!text) throw new Error('MOCOPY_HIL_RIG is not set (the rig description, JSON)');
  return JSON.parse(text) as Rig;
}

/** Structured data beside mocha's json-stream output: the host collects these lines. */
export function record(kind: string, data: Record<string, unknown>): void {
  process.stdout.write(`@@MOCOPY-DATA ${JSON.stringify({ kind, ...data })}\n`);
}
