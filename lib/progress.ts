/**
 * Progress for long copies. On a TTY: a bar with bytes, MB/s and ETA (cli-progress).
 * With --json: one JSON object per line on stdout ({"event":"progress","step":...,"bytes":..,"total":..}),
 * throttled so a fast copy does not flood a log. Otherwise: step lines only.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** A protocol step (S1..S7, S11..S17, ...) with a sentence in the patent's terms. */
  step(name: string, message: string, extra?: Record<string, unknown>): void;
  /** Start (or restart) byte progress for a transfer of `total` bytes. */
  begin(label: string, total: number): void;
  update(bytes: number): void;
  done(): void;
}

export interface ProgressOptions {
  json?: boolean;
  /** Defaults to process.stderr for the bar and step lines, process.stdout for JSON. */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Minimum milliseconds between JSON progress lines (default 250). */
  intervalMs?: number;
  quiet?: boolean;
}

function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

export function createProgress(opts: ProgressOptions = {}): Progress {
  if (opts.json) return jsonProgress(opts.out ?? process.stdout, opts.intervalMs ?? 250);
  const out = opts.out ?? process.stderr;
  if (opts.quiet) return { step() {}, begin() {}, update() {}, done() {} };
  if (out.isTTY) return ttyProgress(out);
  return lineProgress(out);
}

function jsonProgress(out: NodeJS.WritableStream, intervalMs: number): Progress {
  let label = '';
  let total = 0;
  let last = 0;
  let lastBytes = -1;
  const emit = (o: Record<string, unknown>) => out.write(JSON.stringify(o) + '\n');
  return {
    step(name, message, extra) { emit({ event: 'step', step: name, message, ...extra }); },
    begin(l, t) { label = l; total = t; last = 0; lastBytes = -1; emit({ event: 'progress', step: label, bytes: 0, total }); },
    update(bytes) {
      const now = Date.now();
      if (bytes === lastBytes) return;
      if (bytes < total && now - last < intervalMs) return;
      last = now;
      lastBytes = bytes;
      emit({ event: 'progress', step: label, bytes, total });
    },
    done() {},
  };
}

function lineProgress(out: NodeJS.WritableStream): Progress {
  let label = '';
  let total = 0;
  let started = 0;
  let bytes = 0;
  return {
    step(name, message) { out.write(`${name.padEnd(4)} ${message}\n`); },
    begin(l, t) { label = l; total = t; started = Date.now(); bytes = 0; },
    update(b) { bytes = b; },
    done() {
      if (!label) return;
      const secs = Math.max((Date.now() - started) / 1000, 1e-3);
      out.write(`     ${label}: ${formatBytes(bytes)} of ${formatBytes(total)} in ${secs.toFixed(1)} s (${(bytes / secs / 1e6).toFixed(1)} MB/s)\n`);
      label = '';
    },
  };
}

function ttyProgress(out: NodeJS.WritableStream): Progress {
  let bar: cliProgress.SingleBar | undefined;
  let started = 0;
  const stop = () => { if (bar) { bar.stop(); bar = undefined; } };
  return {
    step(name, message) { stop(); out.write(`${name.padEnd(4)} ${message}\n`); },
    begin(label, total) {
      stop();
      started = Date.now();
      bar = new cliProgress.SingleBar({
        stream: out as NodeJS.WriteStream,
        format: `     ${label} [{bar}] {percentage}% | {done} of {size} | {speed} MB/s | ETA {eta_formatted}`,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
      }, cliProgress.Presets.shades_classic);
      bar.start(total, 0, { done: formatBytes(0), size: formatBytes(total), speed: '0.0' });
    },
    update(bytes) {
      if (!bar) return;
      const secs = Math.max((Date.now() - started) / 1000, 1e-3);
      bar.update(bytes, { done: formatBytes(bytes), speed: (bytes / secs / 1e6).toFixed(1) });
    },
    done: stop,
  };
}
