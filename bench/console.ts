/**
 * The operators' console at scale: a SQLite ledger with 1,000,000 licenses (MOCOPY_BENCH_LICENSES to change),
 * bulk-inserted in one transaction. Measured side by side in one run, interleaved:
 *   - the licenses page over HTTP (first page; a page filtered by station) as a signed-in operator, in a center
 *     child process, against the bare indexed query for the same rows on a connection of this process;
 *   - the page's own ledger query (licensePage) against the same bare query;
 *   - the CSV export of every license, streamed: the center's peak RSS (VmHWM of the child) after it.
 * Prints times and ratios; the goals of issue 18 are ≤ 3× for the page and ≤ 192 MiB for the export.
 * "Served in" is the center's own time from the request's arrival to the page handed to the socket (its
 * Server-Timing header); the round trip over a kept-alive connection and the HTTP floor (an empty answer on the
 * same connection) are printed beside it.
 * Run: node --import tsx bench/console.ts
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createConsole } from '../lib/center/console/console.js';
import { hashPassword } from '../lib/center/console/password.js';
import { SqliteLedger } from '../lib/center/ledger.js';
import { serveCenter } from '../lib/center/server.js';
import { header, now, type BenchFigure } from './util.js';

const PW = 'bench password 123';
// One kept-alive connection, as a browser keeps one to the console: the page's time is then the center's work,
// not a TCP handshake per request.
const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });


if (process.argv[2] === '--serve') {
  // The center, in a process of its own so its peak RSS is the export's.
  const running = await serveCenter({ db: process.argv[3]!, port: 0, log: () => {}, console: createConsole });
  process.stdout.write(`${running.url}\n`);
  process.on('SIGTERM', () => void running.close().then(() => process.exit(0)));
} else if (import.meta.url === `file://${process.argv[1]}`) {
  await run();
}

function get(url: string, cookie: string, sink?: (chunk: Buffer) => void): Promise<{ status: number; body: string; bytes: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { cookie }, agent: keepAlive }, (res) => {
      const parts: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => { bytes += c.length; if (sink) sink(c); else parts.push(c); });
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts).toString('utf8'), bytes, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

function post(url: string, cookie: string, body: string): Promise<{ status: number; setCookie: string[] }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, setCookie: ([] as string[]).concat(res.headers['set-cookie'] ?? []) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

export async function run(figures: BenchFigure[] = []): Promise<void> {
  const n = Number(process.env.MOCOPY_BENCH_LICENSES ?? 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'mocopy-bench-console-'));
  const path = join(dir, 'ledger.db');
  try {
    header(`console: ${n.toLocaleString('en')} licenses in a SQLite ledger`);
    const l = SqliteLedger.open(path);
    const stations = Array.from({ length: 20 }, (_, i) => `st-${(0x10000000 + i).toString(16)}`);
    const contents = Array.from({ length: 10 }, (_, i) => `APP-${i}`);
    const at = new Date().toISOString();
    await l.addOperator({ name: 'bench', role: 'admin', passwordHash: await hashPassword(PW), createdAt: at, passwordChangedAt: at }, { operator: 'bench', address: 'local' });
    for (const s of stations) await l.addStation(s, `Station ${s}`, randomBytes(32));
    for (const [i, c] of contents.entries()) await l.upsertContent({ id: c, name: `Program ${c}`, schemes: ['a', 'b'], price: 500 + i * 100 });
    const t0 = now();
    const db = l.db;
    db.pragma('synchronous = OFF'); // bulk load only: the benchmark's ledger is thrown away
    const insL = db.prepare('INSERT INTO licenses (id, request_id, station_id, content_id, medium_id, scheme, response, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const insB = db.prepare('INSERT INTO billing (license_id, station_id, content_id, amount, billed_at) VALUES (?, ?, ?, ?, ?)');
    const start = Date.now() - 90 * 86_400_000;
    const step = (90 * 86_400_000) / n;
    db.transaction(() => {
      for (let i = 0; i < n; i++) {
        const id = `lic-${i.toString(16).padStart(8, '0')}-bench`;
        const st = stations[i % stations.length]!;
        const c = contents[(i * 7) % contents.length]!;
        const issued = new Date(start + i * step).toISOString();
        insL.run(id, `req-${i}`, st, c, (i * 2654435761 % 2 ** 32).toString(16).padStart(8, '0') + (i % 256).toString(16).padStart(2, '0'), i % 2 ? 'a' : 'b', '{}', issued);
        insB.run(id, st, c, 500 + ((i * 7) % contents.length) * 100, issued);
      }
    })();
    db.pragma('synchronous = FULL');
    process.stdout.write(`inserted ${n.toLocaleString('en')} licenses and bills in ${((now() - t0) / 1000).toFixed(1)} s\n`);
    await l.close();

    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', path], { stdio: ['ignore', 'pipe', 'inherit'] });
    const url = await new Promise<string>((resolve) => child.stdout.once('data', (d) => resolve(String(d).trim())));
    try {
      const pre = await get(`${url}/console/sign-in`, '');
      const preCookie = String((pre.headers['set-cookie'] as string[])[0]).split(';')[0]!;
      const csrf = /name="_csrf" value="([^"]+)"/.exec(pre.body)![1]!;
      const signed = await post(`${url}/console/sign-in`, preCookie, new URLSearchParams({ name: 'bench', password: PW, _csrf: csrf }).toString());
      if (signed.status !== 303) throw new Error(`sign-in answered ${signed.status}`);
      const cookie = signed.setCookie.find((c) => c.startsWith('mocopy_console='))!.split(';')[0]!;

      const bare = new Database(path, { readonly: true });
      const ledger = SqliteLedger.open(path);
      const bareFirst = bare.prepare(`SELECT l.id, l.request_id, l.station_id, l.content_id, l.medium_id, l.scheme, l.issued_at, b.id AS bill_id, b.amount, b.billed_at
        FROM licenses l LEFT JOIN billing b ON b.license_id = l.id ORDER BY l.issued_at DESC, l.id DESC LIMIT 51`);
      const bareStation = bare.prepare(`SELECT l.id, l.request_id, l.station_id, l.content_id, l.medium_id, l.scheme, l.issued_at, b.id AS bill_id, b.amount, b.billed_at
        FROM licenses l LEFT JOIN billing b ON b.license_id = l.id WHERE l.station_id = ? ORDER BY l.issued_at DESC, l.id DESC LIMIT 51`);
      const station = stations[7]!;
      const cases = [
        { name: 'first page', key: 'first', path: '/console/licenses', bare: () => bareFirst.all(), query: () => ledger.licensePage({}, { order: 'desc', limit: 51 }) },
        { name: `filtered page (station ${station})`, key: 'filtered', path: `/console/licenses?station=${station}`, bare: () => bareStation.all(station), query: () => ledger.licensePage({ stationId: station }, { order: 'desc', limit: 51 }) },
      ];
      // The HTTP floor: an empty answer from the same center over the same connection.
      const floor: number[] = [];
      for (let i = 0; i < 200; i++) {
        const t = now();
        await get(`${url}/v1/health`, '');
        floor.push(now() - t);
      }
      const floorMs = median(floor);
      process.stdout.write(`HTTP floor (GET /v1/health, kept-alive connection): ${floorMs.toFixed(3)} ms a round trip\n`);
      for (const c of cases) {
        const served: number[] = [];
        const trip: number[] = [];
        const bareMs: number[] = [];
        const query: number[] = [];
        const first = await get(url + c.path, cookie);
        if (first.status !== 200 || !first.body.includes('lic-')) throw new Error(`${c.path} answered ${first.status}`);
        for (let i = 0; i < 200; i++) {
          let t = now();
          const rows = c.bare() as unknown[];
          bareMs.push(now() - t);
          if (rows.length !== 51) throw new Error('the bare query found too few rows');
          t = now();
          await c.query();
          query.push(now() - t);
          t = now();
          const r = await get(url + c.path, cookie);
          trip.push(now() - t);
          if (r.status !== 200) throw new Error(`${c.path} answered ${r.status}`);
          const total = /total;dur=([0-9.]+)/.exec(String(r.headers['server-timing']));
          if (!total) throw new Error(`${c.path} sent no Server-Timing total`);
          served.push(Number(total[1]));
        }
        const [sv, p, b, q] = [median(served), median(trip), median(bareMs), median(query)];
        figures.push({ name: `console.page.${c.key}`, value: sv, unit: 'ms', baseline: b, ratio: sv / b, goal: 3, lowerIsBetter: true });
        process.stdout.write(`${c.name}: served in ${sv.toFixed(3)} ms (request in → page out, the center's Server-Timing), bare indexed query ${b.toFixed(3)} ms → served/bare ${(sv / b).toFixed(2)}× (goal ≤ 3×)${sv / b > 3 ? ' BELOW GOAL' : ''}; `
          + `its ledger query ${q.toFixed(3)} ms (${(q / b).toFixed(2)}×); round trip ${p.toFixed(3)} ms, ${(p - floorMs).toFixed(3)} ms above the HTTP floor ((trip − floor)/bare ${((p - floorMs) / b).toFixed(2)}×)\n`);
      }
      bare.close();
      await ledger.close();

      const before = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const rss0 = Number(/VmRSS:\s+(\d+)/.exec(before)![1]) / 1024;
      let lines = 0;
      const t1 = now();
      const csv = await get(`${url}/console/licenses.csv`, cookie, (c) => { for (const b of c) if (b === 10) lines++; });
      const ms = now() - t1;
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024;
      if (csv.status !== 200 || lines !== n + 1) throw new Error(`CSV export: status ${csv.status}, ${lines} lines for ${n} licenses`);
      figures.push({ name: 'console.export.rss', value: hwm, unit: 'MiB', baseline: 192, ratio: hwm / 192, goal: 1, lowerIsBetter: true });
      process.stdout.write(`CSV export of ${n.toLocaleString('en')} licenses: ${(csv.bytes / 2 ** 20).toFixed(0)} MiB in ${(ms / 1000).toFixed(1)} s (${(n / (ms / 1000)).toFixed(0)} rows/s); center RSS ${rss0.toFixed(0)} MiB before, peak ${hwm.toFixed(0)} MiB (goal ≤ 192 MiB), peak/export size ${(hwm / (csv.bytes / 2 ** 20)).toFixed(2)}\n`);
    } finally {
      keepAlive.destroy();
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
