/**
 * Lazy loader of the native pass-through addon. Nothing loads it until a real device is opened,
 * so the emulator and everything above it work on a machine where the addon did not build.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode, MocopyError } from '../errors.js';
import type { ScsiResult } from './transport.js';

/** The addon resolves with exactly the Transport's result shape. */
export type NativeResult = ScsiResult;

export interface NativeLimits {
  maxTransferBytes: number;
  alignment: number;
  reservedSize: number;
  maxSectors: number;
}

/**
 * How a handle runs its commands (native/addon.cc): 'sg-async' is the Linux sg driver's asynchronous interface on
 * /dev/sgN (write() to submit, a uv_poll_t on the descriptor, read() to collect: no thread hop, up to `maxQueue`
 * in the kernel and more waiting in a FIFO); 'worker' is SG_IO (Linux block nodes) or IOCTL_SCSI_PASS_THROUGH_DIRECT
 * (Windows) on the libuv thread pool, with `fallbackReason` saying why.
 */
export type NativeMode = 'sg-async' | 'worker';

export interface NativeHandleInfo {
  mode: NativeMode;
  /** worker mode: why the asynchronous interface is not used (a block node, turned off, not Linux, ...). */
  fallbackReason?: string;
  inFlight: number;
  /** sg-async: the kernel's per-descriptor queue (SG_MAX_QUEUE). */
  maxQueue?: number;
  syncReap?: boolean;
  /** sg-async: commands waiting in the addon's FIFO for a free slot in the kernel's queue. */
  waiting?: number;
  submitted?: number;
  /** sg-async: write()s the kernel refused for a full queue (EDOM); the command waited and went in later. */
  queueFull?: number;
  maxInFlight?: number;
  maxWaiting?: number;
  /** sg-async: completions collected inside execute() itself / through the event loop (uv_poll_t). */
  syncCompleted?: number;
  polledCompleted?: number;
  /** sg-async: how far past its own timeout the oldest command in the kernel is, in ms (negative: none is). */
  overdueMs?: number;
  /** sg-async: the errno code the handle died of (the device went away); every command is now refused with it. */
  gone?: string;
}

export interface NativeOpenFlags {
  write: boolean;
  /** false: the worker mode even on /dev/sgN (default true: sg-async wherever the node supports it). */
  async?: boolean;
  /** false: sg-async completions are collected only through the event loop, never inside execute(). */
  syncReap?: boolean;
}

/** Commands the addon's executeBatch() takes at once (the sg driver's queue per descriptor). */
export const MAX_NATIVE_BATCH = 16;
/** Sense bytes per result slab row (the addon's sense buffer, kSenseBufferSize in native/passthrough.h). */
export const SLAB_SENSE_BYTES = 96;

/** The addon's surface (native/addon.cc). Directions: 0 none, 1 in, 2 out. */
export interface NativeBinding {
  open(path: string, opts: NativeOpenFlags): number;
  /**
   * The command's promise; or 0 when the command was answered inside the call and a result slab is bound
   * (bindResultSlab): the answer is then in the slab, to be read before anything else runs on this thread. A
   * failure inside the call with no promise made is thrown.
   */
  execute(handle: number, cdb: Buffer, direction: 0 | 1 | 2, data: Uint8Array | undefined, timeoutMs: number): Promise<NativeResult> | 0;
  /**
   * sg-async with syncReap: where execute() writes an answer it has in hand ([status, hostStatus, driverStatus,
   * senseLength, residual, durationUs] and the sense bytes), so it costs no promise and no result object. False
   * when the handle has no such path. Absent in addons built before it.
   */
  bindResultSlab?(handle: number, meta: Float64Array, sense: Uint8Array): boolean;
  /**
   * Up to MAX_NATIVE_BATCH commands in one call, sent in order, packed (an addon call per element would cost more
   * than the batch saves): command i's CDB at cdbs[16i..], params[3i..3i+3) = [CDB length, direction, timeoutMs],
   * datas[i] its data buffer. Returns the count when every command was answered in place (slab rows 0..n-1), else
   * for each what execute() returns for it (0: answered in place; its promise) or the Error it failed with inside
   * the call. Absent in older addons.
   */
  executeBatch?(handle: number, cdbs: Buffer, params: Float64Array, datas: Array<Uint8Array | undefined>): number | Array<Promise<NativeResult> | 0 | Error>;
  close(handle: number): void;
  limits(handle: number): NativeLimits;
  /** Absent in addons built before the sg-async mode (everything is then the worker mode). */
  handleInfo?(handle: number): NativeHandleInfo;
  openHandles(): number;
  nop(): void;
  nopAsync(): Promise<void>;
  platform: string;
  /** Windows only (native/list_windows.cc): SetupDi CD-ROM/disk interfaces and the \\.\ScsiN: adapters' LUNs. */
  listDevices?(): { devices: NativeWinDevice[]; stats: { interfaces: number; ports: number; adapterLuns: number } };
}

export interface NativeWinDevice {
  path: string;
  interfacePath: string;
  source: 'setupdi' | 'scsi-port';
  claimed: boolean;
  hctl?: string;
  peripheralType: number;
  removable: boolean;
  busType: number;
  vendor: string;
  product: string;
  revision: string;
  serial: string;
}

export class AddonMissingError extends MocopyError {
  constructor(detail: string) {
    super('E_ADDON_MISSING', `the native SCSI pass-through addon is not available (${detail}), so real drives cannot be opened`, {
      exitCode: ExitCode.DEVICE,
      hint: 'mocopy ships prebuilt addons for linux-x64 and win32-x64 (prebuilds/); elsewhere build it with `npx node-gyp rebuild` (or `npx cmake-js compile`) in the mocopy directory; emulated drives (emu:IMAGE) work without it',
    });
  }
}

let injected: NativeBinding | undefined;
let loaded: NativeBinding | undefined;
let loadError: string | undefined;

/** Replaces the addon (tests inject a fake); `undefined` restores the real one. */
export function setNativeBinding(binding: NativeBinding | undefined): void {
  injected = binding;
}

function packageRoot(): string {
  // lib/scsi/native-binding.(ts|js) under the root, or dist/lib/scsi/... after the build.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

const require = createRequire(import.meta.url);

/**
 * Where the addon is, in the order tried: MOCOPY_NATIVE_ADDON alone when set (an explicit choice); else what
 * node-gyp-build picks (build/Release, build/Debug, then prebuilds/<platform>-<arch>/ by Node-API tag; with
 * PREBUILDS_ONLY=1 only prebuilds/); else the cmake-js outputs.
 */
export function addonCandidates(root = packageRoot()): string[] {
  if (process.env.MOCOPY_NATIVE_ADDON) return [process.env.MOCOPY_NATIVE_ADDON];
  const out: string[] = [];
  try {
    const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
    out.push(nodeGypBuild.resolve(root));
  } catch {
    // no build and no prebuild for this platform: the cmake-js outputs below are the last chance
  }
  out.push(join(root, 'build-cmake', 'Release', 'mocopy_native.node'), join(root, 'build-cmake', 'mocopy_native.node'));
  return out;
}

let loadedPath: string | undefined;

/** The file the addon was loaded from (undefined before a load, or when a binding was injected). */
export function loadedAddonPath(): string | undefined {
  return injected ? undefined : loadedPath;
}

export function loadNativeBinding(): NativeBinding {
  if (injected) return injected;
  if (loaded) return loaded;
  if (loadError) throw new AddonMissingError(loadError);
  const tried: string[] = [];
  const root = packageRoot();
  for (const p of addonCandidates(root)) {
    if (!existsSync(p)) {
      tried.push(`${p}: not built`);
      continue;
    }
    try {
      loaded = require(p) as NativeBinding;
      loadedPath = p;
      return loaded;
    } catch (e) {
      tried.push(`${p}: ${(e as Error).message}`);
    }
  }
  loadError = tried.length > 2 ? tried[0]! : `no build in ${join(root, 'build')} and no prebuild in ${join(root, 'prebuilds', `${process.platform}-${process.arch}`)}`;
  throw new AddonMissingError(loadError);
}

/** execute() on a handle with no result slab bound (raw callers: tests, benchmarks): always a promise. */
export function executeUnbound(b: NativeBinding, ...args: Parameters<NativeBinding['execute']>): Promise<NativeResult> {
  return b.execute(...args) as Promise<NativeResult>;
}
