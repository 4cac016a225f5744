/**
 * The software SCSI target, for mocopy's tests and demos and for other projects' tests.
 * See docs/emulator.md.
 */
import { UsageError } from '../errors.js';
import { EmulatedDrive, type DriveOptions } from './drive.js';
import { parseEmulatorSpec } from './spec.js';

export { EmulatedDrive, MO_SPEED, CD_SPEED, type DriveOptions, type SpeedModel } from './drive.js';
export { Faults, seededRandom, type FaultSpec, type FaultOp } from './faults.js';
export { createMoImage, readMoHeader, setMoWriteProtect, encodeMoHeader, decodeMoHeader, parseSize, MO_HEADER_SIZE, MO_MAGIC, type MoHeader, type CreateMoOptions } from './mo-image.js';
export { probeImage, type MediumKind, type MediumInfo } from './medium.js';
export { parseEmulatorSpec, parseFault, type EmulatorSpec } from './spec.js';

/** Opens an emulated drive from a spec; `opts` add to (and, for faults, extend) what the spec's options ask. */
export async function openEmulator(spec: string, opts: DriveOptions = {}): Promise<EmulatedDrive> {
  const parsed = parseEmulatorSpec(spec);
  if (!parsed) throw new UsageError(`not an emulator device spec: "${spec}" (use emu:IMAGE, emu-cd:IMAGE or emu-mo:IMAGE)`);
  const faults = [...(parsed.options.faults ?? []), ...(opts.faults ?? [])];
  return EmulatedDrive.open(parsed.path, { ...(parsed.kind ? { kind: parsed.kind } : {}), ...parsed.options, ...opts, ...(faults.length ? { faults } : {}) });
}
