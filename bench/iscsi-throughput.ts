/**
 * iSCSI target READ throughput against Linux's userspace target `tgt` in the same run, on loopback, measured by
 * libiscsi's `iscsi-perf` with 32 commands in flight: 64 KiB reads (MB/s) and 4 KiB reads (IOPS). Our target serves
 * a 256 MiB MO image (2048-byte blocks) as `mocopy emu serve --iscsi` does (the compiled CLI: `npm run build` first);
 * tgt serves a plain file of the same size and contents (512-byte blocks) on LUN 1. Then a soak: our target under
 * 64 KiB reads while its RSS is sampled every second (flat memory: last/first about 1.0).
 *
 * Needs: tgt and libiscsi-bin (Debian packages), root for tgtd; skipped with a note otherwise.
 * Env: MOCOPY_BENCH_ISCSI_SECONDS   seconds of each measured iscsi-perf run (default 10; a 2 s warm-up run precedes it)
 *      MOCOPY_BENCH_ISCSI_SOAK_SECONDS  seconds of the RSS soak (default 60)
 *      MOCOPY_BENCH_ISCSI_CLI           our CLI to run (default dist/cli/main.js), e.g. a patched build to compare
 *      MOCOPY_BENCH_ISCSI_PROFILE=4k|64k  also profile our target (`node --cpu-prof`) for 10 s of such reads and print
 *                                       the top self-time functions (MOCOPY_BENCH_ISCSI_PROFILE_KEEP=FILE keeps the
 *                                       .cpuprofile, for Chrome DevTools)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createMoImage, MO_HEADER_SIZE } from '../lib/emulator/index.js';
import { header, row } from './util.js';

const INFLIGHT = 32;
const SIZE = 256 << 20;
const GOALS = { read64k: 0.8, read4k: 0.4 };
const seconds = (name: string, dflt: number) => {
  const v = Number(process.env[name] ?? dflt);
  return Number.isFinite(v) && v >= 1 ? Math.floor(v) : dflt;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PerfResult { iops: number; mbps: number; xfer: number; seconds: number; raw: string }

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Writes the same pseudo-random data into both images (no sparse-file fast path on either side). */
function fillImages(mo: string, plain: string): void {
  const chunk = randomBytes(1 << 20);
  const a = openSync(mo, 'r+');
  const b = openSync(plain, 'w');
  try {
    for (let off = 0; off < SIZE; off += chunk.length) {
      chunk.writeUInt32BE(off, 0); // every MiB differs
      writeSync(a, chunk, 0, chunk.length, MO_HEADER_SIZE + off);
      writeSync(b, chunk, 0, chunk.length, off);
    }
  } finally {
    closeSync(a);
    closeSync(b);
  }
}

/** Waits for a child to exit; SIGKILL after `ms`. */
function stopChild(c: ChildProcess | undefined, signal: NodeJS.Signals, ms: number): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => c.kill('SIGKILL'), ms);
    c.once('exit', () => { clearTimeout(t); resolve(); });
    c.kill(signal);
  });
}

function blockLength(url: string): number {
  const r = spawnSync('iscsi-readcapacity16', [url], { encoding: 'utf8', timeout: 10_000 });
  const m = /LOGICAL BLOCK LENGTH IN BYTES:\s*(\d+)/.exec(r.stdout ?? '');
  if (!m) throw new Error(`iscsi-readcapacity16 ${url} failed: ${(r.stderr || r.stdout || '').trim()}`);
  return Number(m[1]);
}

/**
 * One iscsi-perf run of sequential reads, `xfer` bytes each, INFLIGHT in flight, bounded by its own `-t` and by a
 * SIGINT (then SIGKILL) of ours 5 s later; the figure is its closing "iops average" (MB/s here are 10^6 bytes: iscsi-perf
 * prints MiB/s). A run that ends early (the target dropped the session) throws, with what both sides printed.
 */
async function perf(url: string, blockSize: number, xfer: number, secs: number, onSecond?: () => void): Promise<PerfResult> {
  const started = performance.now();
  const c = spawn('iscsi-perf', ['-m', String(INFLIGHT), '-b', String(xfer / blockSize), '-t', String(secs), url], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(c);
  let out = '';
  c.stdout!.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  c.stderr!.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  const tick = onSecond ? setInterval(onSecond, 1000) : undefined;
  const guard = setTimeout(() => c.kill('SIGINT'), (secs + 5) * 1000);
  const hard = setTimeout(() => c.kill('SIGKILL'), (secs + 10) * 1000);
  await new Promise<void>((resolve) => c.once('close', () => resolve()));
  clearTimeout(guard);
  clearTimeout(hard);
  if (tick) clearInterval(tick);
  children.delete(c);
  const text = out.replace(/\r/g, '\n');
  const all = [...text.matchAll(/iops average (\d+) \((\d+) MB\/s\)/g)];
  const last = all[all.length - 1];
  if (!last) {
    throw new Error(`iscsi-perf ${url} -b ${xfer / blockSize} gave no figure:\n${text.trim().slice(-800)}`);
  }
  const iops = Number(last[1]);
  const seconds = (performance.now() - started) / 1000;
  if (seconds < secs - 0.5 || !/finished/.test(text)) {
    throw new Error(`iscsi-perf ${url} -b ${xfer / blockSize} -t ${secs} ended after ${seconds.toFixed(1)} s:\n${text.trim().slice(-800)}\n-- our target's log:\n${oursLog.slice(-1500)}`);
  }
  return { iops, mbps: (iops * xfer) / 1e6, xfer, seconds, raw: text };
}

const children = new Set<ChildProcess>();
/** The tail of our target's JSON log (connection events), for a run that ends early. */
let oursLog = '';

async function startOurs(image: string, iqn: string, extraNodeArgs: string[] = []): Promise<{ child: ChildProcess; url: string }> {
  const cli = process.env.MOCOPY_BENCH_ISCSI_CLI ?? join('dist', 'cli', 'main.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
  const port = await freePort();
  const child = spawn(process.execPath, [...extraNodeArgs, cli, 'emu', 'serve', '--iscsi', '--listen', `127.0.0.1:${port}`, '--iqn', iqn, '--mo', image, '--json'],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: process.cwd() });
  children.add(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`mocopy emu serve did not get ready in 20 s: ${err}`)), 20_000);
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`mocopy emu serve exited (${code}): ${err}`)); });
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (/"event":"ready"/.test(buf)) { clearTimeout(t); resolve(); }
      if (buf.length > 1 << 16) buf = buf.slice(-4096); // keep draining the log
      oursLog = buf;
    });
  });
  return { child, url: `iscsi://127.0.0.1:${port}/${iqn}/0` };
}

interface Tgt { child: ChildProcess; url: string; controlPort: number }

function tgtadm(cp: number, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('tgtadm', ['-C', String(cp), ...args], { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

async function startTgt(lunFile: string, iqn: string): Promise<Tgt> {
  const port = await freePort();
  // tgtd's control channel is a Unix socket named by this number: pick one no other tgtd uses.
  let cp = 0;
  for (let i = 0; i < 100 && !cp; i++) {
    const n = 10000 + Math.floor(Math.random() * 20000); // tgtd takes at most 32767
    if (!existsSync(`/var/run/tgtd/socket.${n}`)) cp = n;
  }
  const child = spawn('tgtd', ['-f', '-C', String(cp), '--iscsi', `portal=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const tgt = { child, url: `iscsi://127.0.0.1:${port}/${iqn}/1`, controlPort: cp };
  tgts.add(tgt);
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`tgtd exited (${child.exitCode}): ${err.trim()}`);
    if (tgtadm(cp, ['--op', 'show', '--mode', 'target']).ok) break;
    if (i > 50) throw new Error(`tgtd did not answer tgtadm in 10 s: ${err.trim()}`);
    await sleep(200);
  }
  for (const a of [
    ['--lld', 'iscsi', '--op', 'new', '--mode', 'target', '--tid', '1', '-T', iqn],
    ['--lld', 'iscsi', '--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', '1', '-b', lunFile],
    ['--lld', 'iscsi', '--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL'],
  ]) {
    const r = tgtadm(cp, a);
    if (!r.ok) throw new Error(`tgtadm ${a.join(' ')}: ${r.out}`);
  }
  return tgt;
}

const tgts = new Set<Tgt>();

async function stopTgt(t: Tgt): Promise<void> {
  if (t.child.exitCode === null && t.child.signalCode === null) {
    tgtadm(t.controlPort, ['--lld', 'iscsi', '--op', 'delete', '--force', '--mode', 'target', '--tid', '1']);
    tgtadm(t.controlPort, ['--op', 'delete', '--mode', 'system']);
    // tgtd leaves on its own a moment after "delete system"; it ignores SIGTERM while targets exist.
    await new Promise<void>((resolve) => {
      const t9 = setTimeout(() => t.child.kill('SIGKILL'), 5000);
      t.child.once('exit', () => { clearTimeout(t9); resolve(); });
    });
  }
  children.delete(t.child);
  tgts.delete(t);
  for (const f of [`/var/run/tgtd/socket.${t.controlPort}`, `/var/run/tgtd/socket.${t.controlPort}.lock`]) rmSync(f, { force: true });
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s*kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Self time by function from a .cpuprofile (V8's sampling profiler), highest first. */
export function summarizeCpuProfile(path: string, top = 20): string[] {
  const p = JSON.parse(readFileSync(path, 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }>;
    samples: number[]; timeDeltas: number[];
  };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = Math.max(0, p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0);
    const n = byId.get(id);
    if (!n) return;
    const f = n.callFrame;
    const file = f.url ? f.url.replace(/^file:\/\//, '').replace(process.cwd() + '/', '') : '';
    const key = `${f.functionName || '(anonymous)'} ${file ? `${file}:${f.lineNumber + 1}` : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    const fileKey = file ? (file.startsWith('node:') ? file : file.includes('node_modules') ? 'node_modules' : file) : f.functionName;
    byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + dt);
    total += dt;
  });
  const pct = (v: number) => `${((100 * v) / total).toFixed(1)}%`.padStart(6);
  const lines = [`total sampled ${(total / 1e6).toFixed(2)} s`, '-- self time by function'];
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${pct(v)}  ${k}`);
  lines.push('-- self time by file');
  for (const [k, v] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 12)) lines.push(`${pct(v)}  ${k}`);
  return lines;
}

export async function run(): Promise<void> {
  header(`iSCSI target vs tgt on loopback (iscsi-perf, ${INFLIGHT} in flight, sequential reads)`);
  const missing = ['tgtd', 'tgtadm', 'iscsi-perf', 'iscsi-readcapacity16'].filter((c) => !have(c));
  if (missing.length) {
    console.log(`skipped: ${missing.join(', ')} not found (apt-get install tgt libiscsi-bin)`);
    return;
  }
  if (process.getuid?.() !== 0) {
    console.log('skipped: tgtd needs root');
    return;
  }
  const secs = seconds('MOCOPY_BENCH_ISCSI_SECONDS', 10);
  const soakSecs = seconds('MOCOPY_BENCH_ISCSI_SOAK_SECONDS', 60);
  const profile = (process.env.MOCOPY_BENCH_ISCSI_PROFILE ?? '').toLowerCase();
  const t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'mocopy-bench-iscsi-'));
  const moImage = join(dir, 'ours.mo');
  const lunFile = join(dir, 'tgt.img');
  const iqnOurs = 'iqn.2026-11.org.mocopy:bench-ours';
  const iqnTgt = 'iqn.2026-11.org.mocopy:bench-tgt';
  let ours: { child: ChildProcess; url: string } | undefined;
  let tgt: Tgt | undefined;
  const cleanup = async () => {
    await stopChild(ours?.child, 'SIGTERM', 5000);
    if (ours) children.delete(ours.child);
    for (const t of [...tgts]) await stopTgt(t);
    for (const c of [...children]) await stopChild(c, 'SIGINT', 2000);
    children.clear();
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = () => { void cleanup().finally(() => process.exit(130)); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    createMoImage(moImage, { mediumId: Buffer.from('0102', 'hex'), capacityBytes: SIZE, blockSize: 2048 });
    fillImages(moImage, lunFile);
    ours = await startOurs(moImage, iqnOurs);
    tgt = await startTgt(lunFile, iqnTgt);
    const bsOurs = blockLength(ours.url);
    const bsTgt = blockLength(tgt.url);
    console.log(`ours: ${ours.url} (${bsOurs}-byte blocks)   tgt: ${tgt.url} (${bsTgt}-byte blocks)   ${secs} s per run after a 2 s warm-up`);
    const results: Record<string, { ours: PerfResult; tgt: PerfResult }> = {};
    for (const xfer of [64 << 10, 4 << 10]) {
      const r: Partial<{ ours: PerfResult; tgt: PerfResult }> = {};
      for (const [name, url, bs] of [['ours', ours.url, bsOurs], ['tgt', tgt.url, bsTgt]] as const) {
        await perf(url, bs, xfer, 2); // warm-up: JIT, page cache, tgt's threads
        r[name] = await perf(url, bs, xfer, secs);
      }
      results[xfer === 64 << 10 ? 'read64k' : 'read4k'] = r as { ours: PerfResult; tgt: PerfResult };
    }
    const w = [10, 12, 12, 12, 12, 12, 8];
    console.log(row(['xfer', 'ours IOPS', 'tgt IOPS', 'ours MB/s', 'tgt MB/s', 'ratio', 'goal'], w));
    for (const [k, v] of Object.entries(results)) {
      const ratio = k === 'read64k' ? v.ours.mbps / v.tgt.mbps : v.ours.iops / v.tgt.iops;
      console.log(row([k === 'read64k' ? '64K' : '4K', v.ours.iops, v.tgt.iops, v.ours.mbps, v.tgt.mbps, ratio, `≥ ${GOALS[k as keyof typeof GOALS]}`], w));
    }
    const r64 = results.read64k!.ours.mbps / results.read64k!.tgt.mbps;
    const r4 = results.read4k!.ours.iops / results.read4k!.tgt.iops;
    console.log(`iscsi.read64k ours/tgt MB/s  ${r64.toFixed(3)}  (goal ≥ ${GOALS.read64k}) ${r64 >= GOALS.read64k ? 'met' : 'BELOW GOAL'}`);
    console.log(`iscsi.read4k  ours/tgt IOPS  ${r4.toFixed(3)}  (goal ≥ ${GOALS.read4k}) ${r4 >= GOALS.read4k ? 'met' : 'BELOW GOAL'}`);

    await stopTgt(tgt);
    tgt = undefined;

    // Soak: RSS of our target every second under 64 KiB reads.
    const pid = ours.child.pid!;
    const samples: number[] = [];
    let missed = 0;
    const soak = await perf(ours.url, bsOurs, 64 << 10, soakSecs, () => { try { samples.push(rssKiB(pid)); } catch { missed++; } });
    if (missed || samples.length < soakSecs - 2) console.log(`warning: ${samples.length} RSS samples in ${soak.seconds.toFixed(0)} s (${missed} failed reads of /proc/${pid}/status)`);
    if (samples.length === 0) throw new Error('no RSS sample taken');
    const mib = (k: number) => (k / 1024).toFixed(1);
    const first = samples[0]!;
    const last = samples[samples.length - 1]!;
    const max = Math.max(...samples);
    console.log(`soak ${soakSecs} s of 64K reads on our target: ${soak.mbps.toFixed(1)} MB/s; RSS (MiB, ${samples.length} samples 1 s apart) first ${mib(first)} last ${mib(last)} max ${mib(max)}`);
    console.log(`iscsi.soak.rss last/first  ${(last / first).toFixed(2)}  (flat ≈ 1.0)`);

    if (profile === '4k' || profile === '64k' || profile === '1') {
      const xfer = profile === '64k' ? 64 << 10 : 4 << 10;
      await stopChild(ours.child, 'SIGTERM', 5000);
      children.delete(ours.child);
      const profDir = join(dir, 'prof');
      ours = await startOurs(moImage, iqnOurs, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
      await perf(ours.url, bsOurs, xfer, 2);
      const p = await perf(ours.url, bsOurs, xfer, 10);
      await stopChild(ours.child, 'SIGTERM', 10_000); // a clean exit writes the profile
      children.delete(ours.child);
      ours = undefined;
      const files = existsSync(profDir) ? readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')) : [];
      console.log(`\nprofile of our target, 12 s of ${xfer >> 10}K reads (${p.iops} IOPS under the profiler):`);
      if (!files.length) console.log('  no .cpuprofile written');
      else for (const l of summarizeCpuProfile(join(profDir, files[0]!))) console.log(`  ${l}`);
      if (process.env.MOCOPY_BENCH_ISCSI_PROFILE_KEEP && files.length) {
        const keep = process.env.MOCOPY_BENCH_ISCSI_PROFILE_KEEP;
        copyFileSync(join(profDir, files[0]!), keep);
        console.log(`  profile kept in ${keep}`);
      }
    }
    console.log(`(iscsi bench took ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
