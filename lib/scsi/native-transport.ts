/**
 * NativeTransport: the Transport for real drives, over the addon (Linux SG_IO, Windows SCSI
 * pass-through). It validates every argument before the addon sees it, reads the OS transfer
 * limits (SG_GET_RESERVED_SIZE, BLKSECTGET, sysfs max_sectors_kb) so the device layer splits
 * large I/O, and turns errno failures into TransportError with a hint a lab engineer can act on.
 */
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { cdbHex, opcodeName } from './cdb.js';
import { loadNativeBinding, type NativeBinding } from './native-binding.js';
import { TransportError } from './scsi-errors.js';
import type { ScsiCommand, ScsiResult, Transport, TransportLimits } from './transport.js';
import { validateCommand } from './validate.js';

const DIRECTIONS = { none: 0, in: 1, out: 2 } as const;

/** Fallback when the OS reports nothing: 64 KiB is accepted by every Linux HBA and Windows miniport. */
export const FALLBACK_MAX_TRANSFER = 64 * 1024;

export function isBlockNode(path: string): boolean {
  return /^\/dev\/(sd[a-z]+|sr\d+|scd\d+|nvme)/.test(path);
}

/** Words for the technician per errno: which node to use, which group, which capability. */
export function hintForErrno(code: string | undefined, path: string, phase: 'open' | 'execute', command?: string): string | undefined {
  switch (code) {
    case 'ENOENT': return `${path} does not exist: run \`mocopy devices\` to list the SCSI drives this machine sees`;
    case 'EACCES':
      return process.platform === 'win32'
        ? 'SCSI pass-through needs an administrator: run the station as Administrator'
        : `no permission on ${path}: add the user to the group owning it (\`disk\` for /dev/sg* and /dev/sd*, \`cdrom\` for /dev/sr*) or install a udev rule (hil/README.md); READ MEDIA SERIAL NUMBER and vendor commands on block nodes also need CAP_SYS_RAWIO`;
    case 'EPERM':
      return isBlockNode(path)
        ? `the kernel refuses ${command ?? 'this command'} on the block node ${path} without CAP_SYS_RAWIO: use the SCSI generic node (/dev/sgN; \`mocopy devices\` shows which)`
        : `operation not permitted on ${path}: run with CAP_SYS_RAWIO or as root`;
    case 'ENOTTY': return `${path} is not a SCSI device (SG_IO is not supported on it): use /dev/sgN, /dev/srN or /dev/sdX`;
    case 'ENOMEDIUM': return `no disc in ${path}; opening the block node of a removable drive needs a medium: use /dev/sgN, which opens without one`;
    case 'EROFS': return `${path} is read-only (write-protected disc, or a read-only block node): use /dev/sgN, or check the disc's write-protect tab`;
    case 'EBUSY': return `${path} is in use (mounted or opened exclusively by another program)`;
    case 'EIO': case 'ENOMEM': case 'EINVAL':
      return phase === 'execute' ? `the kernel rejected the transfer (${code}): it may exceed the device's max transfer; mocopy splits I/O by the reported limit, so report this with \`mocopy info ${path}\`` : undefined;
    default: return undefined;
  }
}

function toTransportError(e: unknown, path: string, phase: 'open' | 'execute', cdb?: Uint8Array): TransportError {
  const err = e as NodeJS.ErrnoException & { oscode?: number };
  const code = typeof err.code === 'string' ? err.code : undefined;
  const command = cdb ? opcodeName(cdb) : undefined;
  const hint = hintForErrno(code, path, phase, command);
  return new TransportError({
    device: path,
    ...(command ? { command } : {}),
    ...(cdb ? { cdb } : {}),
    ...(code ? { code } : {}),
    ...(typeof err.errno === 'number' ? { errno: err.errno } : {}),
    message: `${path}: ${phase === 'open' ? 'cannot open' : `${command} [${cdbHex(cdb!)}] failed`}: ${err.message ?? String(e)}`,
    ...(hint ? { hint } : {}),
    cause: e,
  });
}

/** The request-queue limit (min of max_sectors_kb and max_hw_sectors_kb) behind a node, from sysfs (Linux). */
export function sysfsMaxTransfer(path: string, sysRoot = '/sys'): number | undefined {
  let name: string;
  try {
    name = basename(realpathSync(path));
  } catch {
    return undefined;
  }
  let blockName: string | undefined = name;
  if (/^sg\d+$/.test(name)) {
    // An sg node: its limits are those of the block device bound to the same SCSI device, if any.
    try {
      blockName = readdirSync(`${sysRoot}/class/scsi_generic/${name}/device/block`)[0];
    } catch {
      blockName = undefined;
    }
  }
  if (!blockName) return undefined;
  try {
    const q = `${sysRoot}/block/${blockName}/queue`;
    const kb = Math.min(Number(readFileSync(`${q}/max_sectors_kb`, 'utf8').trim()), Number(readFileSync(`${q}/max_hw_sectors_kb`, 'utf8').trim()));
    return Number.isFinite(kb) && kb > 0 ? kb * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export class NativeTransport implements Transport {
  readonly path: string;
  readonly limits: TransportLimits;
  private handle: number | undefined;
  private readonly binding: NativeBinding;

  constructor(path: string, handle: number, limits: TransportLimits, binding: NativeBinding) {
    this.path = path;
    this.handle = handle;
    this.limits = limits;
    this.binding = binding;
  }

  async execute(cmd: ScsiCommand): Promise<ScsiResult> {
    validateCommand(cmd);
    if (this.handle === undefined) throw new TransportError({ device: this.path, cdb: cmd.cdb, code: 'EBADF', message: `${this.path}: device is closed` });
    const cdb = Buffer.isBuffer(cmd.cdb) ? cmd.cdb : Buffer.from(cmd.cdb);
    if (cmd.data && cmd.data.length > this.limits.maxTransferBytes) {
      throw new TypeError(`${this.path}: a ${cmd.data.length}-byte transfer exceeds the device's limit of ${this.limits.maxTransferBytes} bytes (the device layer splits I/O; raw callers must too)`);
    }
    try {
      const r = await this.binding.execute(this.handle, cdb, DIRECTIONS[cmd.direction], cmd.direction === 'none' ? undefined : cmd.data, Math.ceil(cmd.timeoutMs));
      return r;
    } catch (e) {
      throw toTransportError(e, this.path, 'execute', cdb);
    }
  }

  async close(): Promise<void> {
    if (this.handle === undefined) return;
    const h = this.handle;
    this.handle = undefined;
    this.binding.close(h);
  }
}

export interface NativeOpenOptions {
  write?: boolean;
  /** Inject a binding (tests). */
  binding?: NativeBinding;
  /** sysfs root (tests). */
  sysRoot?: string;
}

export async function openNative(path: string, opts: NativeOpenOptions = {}): Promise<NativeTransport> {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('device path must be a non-empty string');
  const binding = opts.binding ?? loadNativeBinding();
  const write = opts.write ?? true;
  let handle: number;
  try {
    handle = binding.open(path, { write });
  } catch (e) {
    throw toTransportError(e, path, 'open');
  }
  let limits: TransportLimits;
  try {
    const l = binding.limits(handle);
    // The hard limit is the request queue's (sysfs max_sectors_kb / max_hw_sectors_kb, or BLKSECTGET on a
    // block node): past it SG_IO fails with EINVAL/EIO/ENOMEM. The sg reserved buffer is only a fallback —
    // it is a preallocated buffer, not a cap (larger requests get their own) — and 64 KiB the last resort.
    const sys = process.platform === 'linux' || opts.sysRoot ? sysfsMaxTransfer(path, opts.sysRoot) : undefined;
    const max = sys ?? ((l.maxSectors > 0 ? l.maxSectors * 512 : 0) || (process.platform === 'win32' ? l.maxTransferBytes : l.reservedSize) || FALLBACK_MAX_TRANSFER);
    limits = { maxTransferBytes: max, alignment: Math.max(1, l.alignment) };
  } catch (e) {
    binding.close(handle);
    const isFile = (() => { try { return statSync(path).isFile(); } catch { return false; } })();
    const te = toTransportError(e, path, 'open');
    if (isFile && te.code === 'ENOTTY') Object.defineProperty(te, 'message', { value: `${path}: cannot open: a regular file is not a SCSI device` });
    throw te;
  }
  return new NativeTransport(path, handle, limits, binding);
}
