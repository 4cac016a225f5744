/** What the command modules share: output, settings, opening the center. */
import { Option } from 'commander';
import { type CenterClient, HttpCenterClient, LocalCenterClient, NativeTransport, openDevice, type OpenOptions, RefusedError, type Scheme, type ScsiDevice, readStationKey, resolveStationSettings, type StationFlags, type StationKey, type StationSettings, UsageError } from '../lib/index.js';

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : Buffer.isBuffer(v) ? v.toString('hex') : v), 2) + '\n');
}

export function out(line = ''): void {
  process.stdout.write(line + '\n');
}

export function info(line: string): void {
  process.stderr.write(line + '\n');
}

export const jsonOption = () => new Option('--json', 'machine-readable output (one JSON document, or JSON lines for progress)');

/** Set from the global -v/--verbose (cli/main.ts). */
export const verbosity = { verbose: false };

/** How a drive's commands run: the sg driver's queue, the libuv pool (and why), or the emulator. */
export function queueMode(dev: ScsiDevice): { queue: string; queueNote?: string } {
  const t = dev.transport;
  if (t instanceof NativeTransport) return t.mode === 'sg-async' ? { queue: 'sg-async' } : { queue: 'worker', ...(t.fallbackReason ? { queueNote: t.fallbackReason } : {}) };
  return { queue: 'in-process' };
}

/** openDevice, and with -v a line on stderr saying how the drive's commands run. */
export async function openDrive(spec: string, opts: OpenOptions = {}): Promise<ScsiDevice> {
  const dev = await openDevice(spec, verbosity.verbose && !opts.onQueueNote ? { ...opts, onQueueNote: (m) => process.stderr.write(`mocopy: ${m}\n`) } : opts);
  if (verbosity.verbose) {
    const q = queueMode(dev);
    process.stderr.write(`mocopy: ${spec}: ${q.queue === 'sg-async' ? 'commands queued in the sg driver (asynchronous interface)' : q.queue === 'worker' ? `commands run on the libuv thread pool: ${q.queueNote ?? 'no reason given'}` : 'emulated in this process'}; max transfer ${dev.transport.limits.maxTransferBytes} bytes\n`);
  }
  return dev;
}

export function parseHex(text: string, what: string): Buffer {
  const t = text.replace(/^0x/i, '').replace(/[\s:]/g, '');
  if (!/^([0-9a-fA-F]{2})+$/.test(t)) throw new UsageError(`${what} must be hex bytes, not "${text}"`);
  return Buffer.from(t, 'hex');
}

export function parseIntOption(text: string, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${what} must be an integer ${min}..${max}, not "${text}"`);
  return n;
}

export function hexDump(buf: Buffer): string {
  const lines: string[] = [];
  for (let i = 0; i < buf.length; i += 16) {
    const row = buf.subarray(i, i + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const text = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${i.toString(16).padStart(6, '0')}  ${hex.padEnd(47)}  ${text}`);
  }
  return lines.join('\n');
}

export interface StationContext {
  settings: StationSettings;
  stationKey: StationKey;
  center: CenterClient;
}

/** The station key and the center client from flags > env > config file. */
export async function stationContext(flags: StationFlags, needCenter = true): Promise<StationContext> {
  const settings = resolveStationSettings(flags);
  if (!settings.stationKeyPath) throw new UsageError('no station key: give --station-key FILE (or set MOCOPY_STATION_KEY, or "stationKey" in the config file)');
  const stationKey = readStationKey(settings.stationKeyPath);
  if (!needCenter) return { settings, stationKey, center: undefined as unknown as CenterClient };
  let center: CenterClient;
  if (settings.center) {
    center = new HttpCenterClient(settings.center, stationKey);
  } else if (settings.centerDb) {
    const local = new LocalCenterClient(settings.centerDb, stationKey);
    await local.ready(); // a missing or unreadable ledger stops the command before any drive is touched
    center = local;
  } else {
    throw new UsageError('no license center: give --center URL or --center-db LEDGER (or set MOCOPY_CENTER / MOCOPY_CENTER_DB, or the config file)');
  }
  return { settings, stationKey, center };
}

/** The station flags a command was given, as `stationContext` takes them. */
export function stationFlagsOf(o: { center?: string; centerDb?: string; stationKey?: string; scheme?: string }): StationFlags {
  return { ...(o.center ? { center: o.center } : {}), ...(o.centerDb ? { centerDb: o.centerDb } : {}), ...(o.stationKey ? { stationKey: o.stationKey } : {}), ...(o.scheme ? { scheme: o.scheme } : {}) };
}

export interface StationDrives {
  ctx: StationContext;
  scheme: Scheme;
  master: ScsiDevice;
  targets: ScsiDevice[];
  /** Aborted by Ctrl-C or SIGTERM: the copies in flight end through their failure path. */
  signal: AbortSignal;
}

/**
 * A station with its center, its master drive and its target drives open for `fn`; Ctrl-C and SIGTERM abort the
 * signal with `stopped` as the reason; every drive and the center are closed afterwards, whatever happened.
 */
export async function withStationDrives<T>(flags: StationFlags, masterSpec: string, targetSpecs: string[], stopped: string, fn: (s: StationDrives) => Promise<T>, targetOpts: { quirksFile?: string } = {}): Promise<T> {
  const ctx = await stationContext(flags);
  const targets: ScsiDevice[] = [];
  const stop = new AbortController();
  const onSignal = () => stop.abort(new RefusedError('E_INTERRUPTED', stopped, { hint: 'run the same command again (no license is billed twice)' }));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let master: ScsiDevice | undefined;
  try {
    master = await openDrive(masterSpec, { write: false });
    for (const spec of targetSpecs) targets.push(await openDrive(spec, { write: true, ...targetOpts }));
    return await fn({ ctx, scheme: ctx.settings.scheme ?? 'a', master, targets, signal: stop.signal });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const t of targets) await t.close().catch(() => undefined);
    await master?.close();
    await ctx.center.close();
  }
}

/** `--listen HOST:PORT` ([v6]:PORT, HOST alone, :PORT alone). */
export function parseListen(text: string, defaultPort: number): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+))?:?(\d+)?$/.exec(text.trim());
  const host = m?.[1] ?? m?.[2] ?? '127.0.0.1';
  const port = m?.[3] !== undefined ? Number(m[3]) : defaultPort;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--listen must be HOST:PORT, not "${text}"`);
  return { host, port };
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
