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
  /** The iSCSI stage (virtual rig): an emulated MO drive that `mocopy emu serve --iscsi` serves on the host. */
  iscsi?: RigIscsi;
  /** Run the benchmarks. */
  bench?: boolean;
  work: string;
}

/**
 * The iSCSI stage: the host serves an emulated MO drive with `mocopy emu serve --iscsi`, QEMU's own initiator
 * (libiscsi) attaches its LUN as a scsi-generic device behind virtio-scsi, so the guest's /dev/sgN passes
 * every CDB (READ MEDIA SERIAL NUMBER included) to mocopy's target.
 */
export interface RigIscsi {
  /** The /dev/sgN whose INQUIRY names `vendor`/`product`; absent when the guest found none (the checks then fail). */
  spec?: string;
  vendor: string;
  product: string;
  /** The image's medium ID (hex), as `emu create-mo --medium-id` set it. */
  mediumId: string;
  /** Licensed copies to make onto the drive from the rig's master (one per scheme), with the publisher's files. */
  copies: Array<{ contentId: string; scheme: 'a' | 'b'; file: string }>;
  /** Faults through the kernel: discs served with a device-spec fault, each already holding the copies `before`. */
  faults?: RigIscsiFaults;
}

export interface RigIscsiFaults {
  /** The copy the guest attempts onto each fault disc. */
  contentId: string;
  scheme: 'a' | 'b';
  file: string;
  /** Content IDs already on the fault discs before the boot. */
  before: string[];
  /** A write medium error over the data area: the copy must fail as it does against the in-process emulator. */
  mediumError: RigFaultDisc & { reference: string };
  /** A power cut after N writes: the host serves the image again once it has happened; a second run completes. */
  powerCut: RigFaultDisc;
}

export interface RigFaultDisc {
  /** The /dev/sgN whose disc has `mediumId`; absent when the guest found none. */
  spec?: string;
  mediumId: string;
  /** The device-spec fault it is served with (docs/emulator.md). */
  fault: string;
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
