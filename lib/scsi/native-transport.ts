/**
 * NativeTransport: the Transport for real drives, over the addon (Linux SG_IO, Windows SCSI
 * pass-through). It validates every argument before the addon sees it, reads the OS transfer
 * limits (SG_GET_RESERVED_SIZE, BLKSECTGET, sysfs max_sectors_kb) so the device layer splits
 * large I/O, and turns errno failures into TransportError with a hint a lab engineer can act on.
 * On Linux /dev/sgN the addon runs commands through the sg driver's asynchronous interface
 * (`mode` 'sg-async'); elsewhere on the libuv thread pool (`mode` 'worker', `fallbackReason` says
 * why). docs/hil-async.md has the details and the measurements.
 */
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { cdbHex, opcodeName } from './cdb.js';
import { loadNativeBinding, MAX_NATIVE_BATCH, SLAB_SENSE_BYTES, type NativeBinding, type NativeHandleInfo, type NativeMode } from './native-binding.js';
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
    case 'ENODEV': case 'ENXIO':
      return phase === 'execute'
        ? `${path} went away while in use (unplugged, powered off, or removed from the SCSI bus): reconnect the drive, run \`mocopy devices\` and start again`
        : `${path} has no device behind it: run \`mocopy devices\` to list the SCSI drives this machine sees`;
    case 'ECANCELED': return `${path} was closed while the command was in flight: the drive may or may not have executed it`;
    case 'ETIMEDOUT': return `${path}: the kernel did not answer the command, not even with its own timeout: the drive or its adapter is stuck; the handle was closed: power-cycle the drive and reopen it`;
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

/** The answer of a command with no sense, shared (nobody writes into a result's sense). */
const NO_SENSE = Buffer.alloc(0);

/** Past the command's own timeout the kernel aborts it and answers DID_TIME_OUT; this is how long after that to give up on it. */
export const SAFETY_GRACE_MS = 30_000;

interface Outstanding {
  deadline: number;
  reject: (e: Error) => void;
  cdb: Buffer;
  timeoutMs: number;
  settled: boolean;
}

export class NativeTransport implements Transport {
  readonly path: string;
  readonly limits: TransportLimits;
  /** 'sg-async' (Linux /dev/sgN: no thread hop, several commands queued in the kernel) or 'worker' (libuv pool). */
  readonly mode: NativeMode;
  /** Why the worker mode (for -v): a block node, the asynchronous interface turned off, Windows, ... */
  readonly fallbackReason: string | undefined;
  private handle: number | undefined;
  private readonly binding: NativeBinding;
  private readonly graceMs: number;
  private readonly outstanding = new Set<Outstanding>();
  private sweeper: NodeJS.Timeout | undefined;
  private broken: string | undefined;
  /** sg-async: commands given to the addon and not settled yet. */
  private active = 0;
  /** Where the addon writes an answer it had inside execute() (bindResultSlab); undefined: every answer is a promise. */
  private readonly slab: Float64Array | undefined;
  private readonly slabSense: Uint8Array | undefined;
  /** -v: told when the kernel's queue was full (NativeOpenOptions.onQueueNote); once live, then at close. */
  private readonly onQueueNote: ((message: string) => void) | undefined;
  private queueNoted = false;
  /**
   * The CDB as handed to the addon: copied into memory outside V8's heap, one view per length, reused (the addon
   * copies the CDB before it returns). A CDB built with Buffer.alloc (every builder in cdb.ts) is a typed array V8
   * keeps on its heap, and reading its address from the addon makes V8 move it out first: an allocation per command
   * that cost a TEST UNIT READY a third of its time in the device layer under QEMU TCG.
   */
  private readonly cdbViews = (() => {
    const b = Buffer.allocUnsafeSlow(16);
    return Array.from({ length: 17 }, (_, n) => b.subarray(0, n));
  })();
  /** executeBatch's packed arguments, reused (the addon copies the CDBs). */
  private batchPack: { cdbs: Buffer; params: Float64Array } | undefined;

  constructor(path: string, handle: number, limits: TransportLimits, binding: NativeBinding, opts: { safetyGraceMs?: number; onQueueNote?: (message: string) => void } = {}) {
    this.path = path;
    this.handle = handle;
    this.limits = limits;
    this.binding = binding;
    this.graceMs = opts.safetyGraceMs ?? SAFETY_GRACE_MS;
    this.onQueueNote = opts.onQueueNote;
    const info = binding.handleInfo?.(handle);
    this.mode = info?.mode ?? 'worker';
    this.fallbackReason = this.mode === 'worker' ? info?.fallbackReason ?? 'the addon reports no queue mode (built before sg-async)' : undefined;
    if (this.mode === 'sg-async' && binding.bindResultSlab) {
      // Own ArrayBuffers (not small typed arrays V8 keeps on its heap), so their addresses never move. A row per
      // command of a batch: 6 numbers, 96 sense bytes.
      const meta = new Float64Array(new ArrayBuffer(8 * 6 * MAX_NATIVE_BATCH));
      const sense = new Uint8Array(new ArrayBuffer(SLAB_SENSE_BYTES * MAX_NATIVE_BATCH));
      if (binding.bindResultSlab(handle, meta, sense)) {
        this.slab = meta;
        this.slabSense = sense;
      }
    }
  }

  /** The answer the addon left in slab row `row` (read at once: the next call overwrites it). */
  private fromSlab(row = 0): ScsiResult {
    const s = this.slab!;
    const o = row * 6;
    const senseLen = s[o + 3]!;
    return {
      status: s[o]!,
      hostStatus: s[o + 1]!,
      driverStatus: s[o + 2]!,
      sense: senseLen > 0 ? Buffer.from(this.slabSense!.subarray(row * SLAB_SENSE_BYTES, row * SLAB_SENSE_BYTES + senseLen)) : NO_SENSE,
      residual: s[o + 4]!,
      durationUs: s[o + 5]!,
    };
  }

  /** Why `cmd` cannot be sent (a TypeError or TransportError), or undefined. */
  private refusal(cmd: ScsiCommand): Error | undefined {
    try {
      validateCommand(cmd);
    } catch (e) {
      return e as Error;
    }
    if (this.handle === undefined) {
      const cdb = Buffer.from(cmd.cdb);
      return this.broken
        ? new TransportError({ device: this.path, cdb, code: 'ETIMEDOUT', message: `${this.path}: ${opcodeName(cdb)} refused: ${this.broken}`, hint: hintForErrno('ETIMEDOUT', this.path, 'execute')! })
        : new TransportError({ device: this.path, cdb, code: 'EBADF', message: `${this.path}: device is closed` });
    }
    if (cmd.data && cmd.data.length > this.limits.maxTransferBytes) {
      return new TypeError(`${this.path}: a ${cmd.data.length}-byte transfer exceeds the device's limit of ${this.limits.maxTransferBytes} bytes (the device layer splits I/O; raw callers must too)`);
    }
    return undefined;
  }

  /**
   * sg-async: the commands in one addon call (at most MAX_NATIVE_BATCH at a time), sent in order. Elsewhere (worker
   * mode, or an addon without executeBatch) one execute() each, which is what the batch would cost there anyway.
   */
  executeBatch(cmds: readonly ScsiCommand[]): Array<Promise<ScsiResult>> {
    if (this.mode !== 'sg-async' || !this.binding.executeBatch || this.handle === undefined) return cmds.map((c) => this.execute(c));
    const out: Array<Promise<ScsiResult>> = [];
    const pack = this.batchPack ??= { cdbs: Buffer.alloc(16 * MAX_NATIVE_BATCH), params: new Float64Array(3 * MAX_NATIVE_BATCH) };
    for (let at = 0; at < cmds.length; at += MAX_NATIVE_BATCH) {
      const part = cmds.slice(at, at + MAX_NATIVE_BATCH);
      // Malformed commands are refused alone, in their places; the others go in one call.
      const slot: Array<Error | number> = [];
      const datas: Array<Uint8Array | undefined> = [];
      const sentCdbs: Buffer[] = [];
      for (const c of part) {
        const bad = this.refusal(c);
        if (bad) {
          slot.push(bad);
          continue;
        }
        const n = datas.length;
        pack.cdbs.set(c.cdb, 16 * n);
        pack.params[3 * n] = c.cdb.length;
        pack.params[3 * n + 1] = DIRECTIONS[c.direction];
        pack.params[3 * n + 2] = Math.ceil(c.timeoutMs);
        datas.push(c.direction === 'none' ? undefined : c.data);
        sentCdbs.push(Buffer.isBuffer(c.cdb) ? c.cdb : Buffer.from(c.cdb));
        slot.push(n);
      }
      let answers: number | Array<Promise<ScsiResult> | 0 | Error> = [];
      let thrown: unknown;
      if (datas.length > 0) {
        try {
          answers = this.binding.executeBatch(this.handle!, pack.cdbs, pack.params, datas);
        } catch (e) {
          thrown = e;
        }
        if (thrown === undefined && !this.sweeper) this.armSweeper();
      }
      for (const k of slot) {
        if (typeof k !== 'number') {
          out.push(Promise.reject(k));
          continue;
        }
        const cdb = sentCdbs[k]!;
        // A number: every command was answered in place, in slab rows 0..n-1.
        const a = typeof answers === 'number' ? 0 : answers[k];
        if (thrown !== undefined) out.push(Promise.reject(toTransportError(thrown, this.path, 'execute', cdb)));
        else if (a === 0) out.push(Promise.resolve(this.fromSlab(k)));
        else if (a instanceof Error) out.push(Promise.reject(toTransportError(a, this.path, 'execute', cdb)));
        else {
          this.active++;
          out.push(a!.then(this.onDone, (e) => this.onFail(e, cdb)));
        }
      }
    }
    return out;
  }

  /** The addon's view of this handle (mode and, in sg-async mode, its queue counters); undefined once closed. */
  info(): NativeHandleInfo | undefined {
    return this.handle === undefined ? undefined : this.binding.handleInfo?.(this.handle);
  }

  execute(cmd: ScsiCommand): Promise<ScsiResult> {
    const bad = this.refusal(cmd);
    if (bad) return Promise.reject(bad);
    const cdb = Buffer.isBuffer(cmd.cdb) ? cmd.cdb : Buffer.from(cmd.cdb);
    const timeoutMs = Math.ceil(cmd.timeoutMs);
    const sent = this.cdbViews[cdb.length]!;
    sent.set(cdb);
    let p: Promise<ScsiResult> | 0;
    try {
      p = this.binding.execute(this.handle!, sent, DIRECTIONS[cmd.direction], cmd.direction === 'none' ? undefined : cmd.data, timeoutMs);
    } catch (e) {
      return Promise.reject(toTransportError(e, this.path, 'execute', cdb));
    }
    if (p === 0) return Promise.resolve(this.fromSlab());
    if (!this.sweeper) this.armSweeper();
    if (this.mode === 'sg-async') {
      // The addon knows when each command went to the kernel: the sweep asks it (overdueMs) instead of keeping a
      // timer and a promise of its own per command, which would cost as much as the rest of this path.
      this.active++;
      return p.then(this.onDone, (e) => this.onFail(e, cdb));
    }
    // Worker mode: a safety net per command (a thread per command costs far more anyway).
    return new Promise<ScsiResult>((resolve, reject) => {
      const o: Outstanding = { deadline: Date.now() + timeoutMs + this.graceMs, reject, cdb, timeoutMs, settled: false };
      this.outstanding.add(o);
      p.then((r) => {
        if (o.settled) return;
        o.settled = true;
        this.outstanding.delete(o);
        resolve(r);
      }, (e) => {
        if (o.settled) return;
        o.settled = true;
        this.outstanding.delete(o);
        reject(toTransportError(e, this.path, 'execute', cdb));
      });
    });
  }

  private readonly onDone = (r: ScsiResult): ScsiResult => {
    this.active--;
    return r;
  };

  private onFail(e: unknown, cdb: Buffer): never {
    this.active--;
    if (this.broken && (e as NodeJS.ErrnoException)?.code === 'ECANCELED') throw this.stuckError(cdb);
    throw toTransportError(e, this.path, 'execute', cdb);
  }

  private stuckError(cdb: Buffer, timeoutMs?: number): TransportError {
    return new TransportError({
      device: this.path, cdb, code: 'ETIMEDOUT',
      message: timeoutMs !== undefined
        ? `${this.path}: ${opcodeName(cdb)} [${cdbHex(cdb)}] got no answer from the kernel within ${timeoutMs} ms + ${this.graceMs} ms grace`
        : `${this.path}: ${opcodeName(cdb)} [${cdbHex(cdb)}] failed: ${this.broken}`,
      hint: hintForErrno('ETIMEDOUT', this.path, 'execute')!,
    });
  }

  private armSweeper(): void {
    const period = Math.max(10, Math.min(1000, Math.floor(this.graceMs / 4)));
    this.sweeper = setInterval(() => this.sweep(), period);
    this.sweeper.unref();
  }

  private sweep(): void {
    if (this.outstanding.size === 0 && this.active === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
      return;
    }
    const now = Date.now();
    const late = [...this.outstanding].filter((o) => now >= o.deadline);
    const info = this.mode === 'sg-async' && this.handle !== undefined ? this.binding.handleInfo?.(this.handle) : undefined;
    const overdue = info?.overdueMs ?? -1;
    if (info?.queueFull && !this.queueNoted && this.onQueueNote) {
      this.queueNoted = true;
      this.onQueueNote(`${this.path}: the sg driver's queue is full (it holds ${info.maxQueue ?? 16} commands per descriptor): further commands wait in mocopy's queue and go in as the device answers`);
    }
    if (late.length === 0 && !(overdue > this.graceMs)) return;
    this.broken = `a command got no answer from the kernel within its timeout + ${this.graceMs} ms, so the handle was closed`;
    for (const o of late) {
      o.settled = true;
      this.outstanding.delete(o);
      o.reject(this.stuckError(o.cdb, o.timeoutMs));
    }
    // The kernel still holds the command and its buffer: closing the handle is the one way to be sure it never
    // writes into memory the caller now reuses (sg-async: the kernel orphans it at close, and every command still
    // outstanding is failed with this ETIMEDOUT; worker mode: the close waits for the pool's ioctls).
    if (this.handle !== undefined) {
      const h = this.handle;
      this.handle = undefined;
      this.binding.close(h);
    }
  }

  async close(): Promise<void> {
    if (this.handle === undefined) return;
    const info = this.onQueueNote && this.mode === 'sg-async' ? this.binding.handleInfo?.(this.handle) : undefined;
    if (info?.queueFull) {
      this.onQueueNote!(`${this.path}: the sg driver refused ${info.queueFull} of ${info.submitted ?? '?'} commands for a full queue (${info.maxQueue ?? 16} per descriptor); each waited in mocopy's queue (at most ${info.maxWaiting ?? '?'} at once) and then went in: ask for fewer in flight to avoid the wait`);
    }
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
  /**
   * false: run commands on the libuv thread pool even on /dev/sgN (default: the sg asynchronous interface where the
   * node has it; MOCOPY_SG_ASYNC=0 turns it off too).
   */
  async?: boolean;
  /** false: sg-async completions only through the event loop (benchmarks). */
  syncReap?: boolean;
  /** How long past a command's timeout to wait for the kernel before giving up on it (ms; tests). */
  safetyGraceMs?: number;
  /**
   * sg-async: told in words when the kernel refused commands for a full queue (the sg driver holds 16 per
   * descriptor) and they waited in the addon's queue instead: once when first seen, and the totals at close
   * (the CLI's -v).
   */
  onQueueNote?: (message: string) => void;
}

export async function openNative(path: string, opts: NativeOpenOptions = {}): Promise<NativeTransport> {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('device path must be a non-empty string');
  const binding = opts.binding ?? loadNativeBinding();
  const write = opts.write ?? true;
  const useAsync = opts.async ?? process.env.MOCOPY_SG_ASYNC !== '0';
  let handle: number;
  try {
    // Only the flags that differ from the defaults: a plain {write} keeps older and injected bindings working.
    handle = binding.open(path, { write, ...(useAsync ? {} : { async: false }), ...(opts.syncReap === false ? { syncReap: false } : {}) });
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
  return new NativeTransport(path, handle, limits, binding, { ...(opts.safetyGraceMs !== undefined ? { safetyGraceMs: opts.safetyGraceMs } : {}), ...(opts.onQueueNote ? { onQueueNote: opts.onQueueNote } : {}) });
}
