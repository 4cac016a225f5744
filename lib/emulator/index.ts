/**
 * The software SCSI target, for mocopy's tests and demos and for other projects' tests.
 * See docs/emulator.md.
 */
import { UsageError } from '../errors.js';
import { EmulatedDrive, type DriveOptions } from './drive.js';
import type { MediumKind } from './medium.js';

export { EmulatedDrive, MO_SPEED, CD_SPEED, type DriveOptions, type SpeedModel } from './drive.js';
export { Faults, seededRandom, type FaultSpec, type FaultOp } from './faults.js';
export { createMoImage, readMoHeader, setMoWriteProtect, encodeMoHeader, decodeMoHeader, parseSize, MO_HEADER_SIZE, MO_MAGIC, type MoHeader, type CreateMoOptions } from './mo-image.js';
export { probeImage, type MediumKind, type MediumInfo } from './medium.js';

/** Parses `emu:PATH`, `emu-cd:PATH` or `emu-mo:PATH`; undefined for other specs. */
export function parseEmulatorSpec(spec: string): { path: string; kind?: MediumKind } | undefined {
  const m = /^emu(?:-(cd|mo))?:(.+)$/.exec(spec);
  if (!m) return undefined;
  return { path: m[2]!, ...(m[1] ? { kind: m[1] as MediumKind } : {}) };
}

export async function openEmulator(spec: string, opts: DriveOptions = {}): Promise<EmulatedDrive> {
  const parsed = parseEmulatorSpec(spec);
  if (!parsed) throw new UsageError(`not an emulator device spec: "${spec}" (use emu:IMAGE, emu-cd:IMAGE or emu-mo:IMAGE)`);
  return EmulatedDrive.open(parsed.path, { ...(parsed.kind ? { kind: parsed.kind } : {}), ...opts });
}
