/**
 * Device specs for emulated drives, with options after `?` so a technician can rehearse and a script can
 * test from the command line (docs/emulator.md, "Device-spec options"):
 *
 *   emu:PATH | emu-mo:PATH | emu-cd:PATH   [?OPTION[&OPTION…]]
 *   OPTION   = fault=FAULT | seed=N | speed=mo|cd|cdNN|off | changer=IMAGE[,IMAGE…] | changer-delay=MS
 *   FAULT    = medium-error:read|write|any:FROM-TO | not-ready:N | timeout[:OPCODE] | power-cut-after-writes:N
 *            | rmsn-length:N | short-read:N[:COUNT]
 */
import { UsageError } from '../errors.js';
import { CD_SPEED, MO_SPEED, type DriveOptions } from './drive.js';
import type { FaultSpec } from './faults.js';
import type { MediumKind } from './medium.js';

export interface EmulatorSpec {
  path: string;
  kind?: MediumKind;
  /** What the options after `?` ask for. */
  options: DriveOptions;
}

const GRAMMAR = 'emu:IMAGE[?fault=FAULT&seed=N&speed=mo|cd|cdNN|off&changer=IMAGE,IMAGE&changer-delay=MS], FAULT one of medium-error:read|write|any:FROM-TO, not-ready:N, timeout[:OPCODE], power-cut-after-writes:N, rmsn-length:N, short-read:N[:COUNT] (docs/emulator.md)';

function count(text: string | undefined, what: string, spec: string, min = 0): number {
  if (text === undefined || !/^\d{1,15}$/.test(text) || Number(text) < min) throw new UsageError(`device spec "${spec}": ${what} must be a whole number${min ? ` ≥ ${min}` : ''}, not "${text ?? ''}"`, `the grammar is ${GRAMMAR}`);
  return Number(text);
}

export function parseFault(text: string, spec: string): FaultSpec {
  const [kind, ...args] = text.split(':');
  switch (kind) {
    case 'medium-error': {
      const op = args[0];
      const range = /^(\d{1,15})-(\d{1,15})$/.exec(args[1] ?? '');
      if ((op !== 'read' && op !== 'write' && op !== 'any') || !range || args.length !== 2) break;
      return { kind: 'medium-error', op, from: Number(range[1]), to: Number(range[2]) };
    }
    case 'not-ready':
      if (args.length !== 1) break;
      return { kind: 'not-ready', commands: count(args[0], 'not-ready', spec, 1) };
    case 'timeout':
      if (args.length > 1) break;
      if (args.length === 0) return { kind: 'timeout' };
      if (!/^(0x)?[0-9a-fA-F]{1,2}$/.test(args[0]!)) break;
      return { kind: 'timeout', opcode: parseInt(args[0]!.replace(/^0x/, ''), 16) };
    case 'power-cut-after-writes':
      if (args.length !== 1) break;
      return { kind: 'power-cut-after-writes', writes: count(args[0], 'power-cut-after-writes', spec, 1) };
    case 'rmsn-length':
      if (args.length !== 1) break;
      return { kind: 'rmsn-length', length: count(args[0], 'rmsn-length', spec) };
    case 'short-read':
      if (args.length < 1 || args.length > 2) break;
      return { kind: 'short-read', residual: count(args[0], 'short-read bytes', spec, 1), ...(args[1] !== undefined ? { count: count(args[1], 'short-read count', spec, 1) } : {}) };
  }
  throw new UsageError(`device spec "${spec}": unknown or malformed fault "${text}"`, `the grammar is ${GRAMMAR}`);
}

/** Parses an emulator spec; undefined when the spec is not one (a real device path). */
export function parseEmulatorSpec(spec: string): EmulatorSpec | undefined {
  const m = /^emu(?:-(cd|mo))?:(.+)$/s.exec(spec);
  if (!m) return undefined;
  let path = m[2]!;
  const options: DriveOptions = {};
  // Options start at the last '?' followed by a known key, so a '?' inside a file name still works.
  const q = /\?((?:fault|seed|speed|changer|changer-delay)=[^?]*)$/.exec(path);
  if (q) {
    path = path.slice(0, q.index);
    const faults: FaultSpec[] = [];
    for (const part of q[1]!.split('&')) {
      const eq = part.indexOf('=');
      const key = eq < 0 ? part : part.slice(0, eq);
      const value = eq < 0 ? undefined : decodeURIComponent(part.slice(eq + 1));
      if (key === 'fault' && value) faults.push(parseFault(value, spec));
      else if (key === 'seed') options.seed = count(value, 'seed', spec);
      else if (key === 'speed' && (value === 'mo' || value === 'cd' || value === 'off')) options.speed = value === 'mo' ? MO_SPEED : value === 'cd' ? CD_SPEED : false;
      else if (key === 'speed' && value && /^cd([1-9]\d?)$/.test(value)) options.speed = { ...CD_SPEED, readMBps: Number(value.slice(2)) * 0.15 }; // N x 150 KB/s
      else if (key === 'changer' && value) options.changer = { ...options.changer, images: value.split(',').filter(Boolean) };
      else if (key === 'changer-delay') options.changer = { images: options.changer?.images ?? [], delayMs: count(value, 'changer-delay', spec) };
      else throw new UsageError(`device spec "${spec}": unknown or malformed option "${part}"`, `the grammar is ${GRAMMAR}`);
    }
    if (faults.length) options.faults = faults;
  }
  if (!path) throw new UsageError(`device spec "${spec}": no image path`, `the grammar is ${GRAMMAR}`);
  return { path, ...(m[1] ? { kind: m[1] as MediumKind } : {}), options };
}
