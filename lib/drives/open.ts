/**
 * The device factory: opens a device spec — `emu:IMAGE` / `emu-cd:IMAGE` / `emu-mo:IMAGE` (the software
 * emulator), `/dev/sgN`, `/dev/srN`, `/dev/sdX` (Linux SG_IO), `\\.\CdRom0`, `\\.\PhysicalDrive2`
 * (Windows SCSI pass-through), or an injected Transport. It sits above both backends so that
 * lib/scsi/ never depends on the emulator; everything returned runs the same ScsiDevice API.
 */
import { UsageError } from '../errors.js';
import { openEmulator, parseEmulatorSpec, type DriveOptions } from '../emulator/index.js';
import { ScsiDevice, type DeviceOptions } from '../scsi/device.js';
import { openNative } from '../scsi/native-transport.js';
import { loadQuirks } from '../scsi/quirks.js';
import type { Transport } from '../scsi/transport.js';

export interface OpenOptions extends DeviceOptions {
  /** Open for writing (real devices: read-write open; the emulator always allows writes the medium allows). */
  write?: boolean;
  /** Use this transport instead of opening the spec (tests, custom backends). */
  transport?: Transport;
  /** Options for an emulated drive (faults, speed model, ...). */
  emulator?: DriveOptions;
  /** Quirks file path (else MOCOPY_QUIRKS, else the built-in table). */
  quirksFile?: string;
  /** Real drives: told when the kernel's command queue was full and commands waited in mocopy's (the CLI's -v). */
  onQueueNote?: (message: string) => void;
}

export function isRealDeviceSpec(spec: string): boolean {
  return spec.startsWith('/dev/') || spec.startsWith('\\\\.\\') || spec.startsWith('//./');
}

export async function openTransport(spec: string, opts: OpenOptions = {}): Promise<Transport> {
  if (opts.transport) return opts.transport;
  if (parseEmulatorSpec(spec)) return openEmulator(spec, opts.emulator ?? {});
  if (isRealDeviceSpec(spec)) return openNative(spec, { write: opts.write ?? true, ...(opts.onQueueNote ? { onQueueNote: opts.onQueueNote } : {}) });
  throw new UsageError(`not a device: "${spec}"`,
    'use emu:IMAGE (emulated drive), /dev/sgN or /dev/srN (Linux), or \\\\.\\CdRom0 / \\\\.\\PhysicalDriveN (Windows); `mocopy devices` lists real drives');
}

export async function openDevice(spec: string, opts: OpenOptions = {}): Promise<ScsiDevice> {
  const transport = await openTransport(spec, opts);
  const quirks = opts.quirks ?? loadQuirks(opts.quirksFile);
  return new ScsiDevice(spec, transport, { ...opts, quirks });
}
