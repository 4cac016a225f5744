/**
 * The center as operators run it: readiness that follows the database, Prometheus metrics scraped by a real
 * Prometheus, JSON logs that carry request IDs and no secrets, and a rolling restart behind a real nginx
 * while stations copy, which no station notices.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { H, requestMac } from '../lib/center/http-auth.js';
import { HttpCenterClient } from '../lib/center/http-client.js';
import { serveCenter, type RunningCenter } from '../lib/center/server.js';
import type { LicenseRequest } from '../lib/domain/index.js';
import { ledgerReport, makeWorld, tempDir, withCenter, type World } from './helpers/fixtures.js';
import { billingFigures } from './helpers/center-instances.js';
import { freePort, PgServer, requirePostgres, sharedPostgres } from './helpers/postgres.js';
import { requireTool } from './helpers/tools.js';

const req = (over: Partial<LicenseRequest> = {}): LicenseRequest => ({ requestId: randomUUID(), scheme: 'a', contentId: 'APP-1', mediumId: randomBytes(8).toString('hex'), ...over });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, f: () => Promise<T | undefined>): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** The mocopy CLI from source in a process of its own; resolves with its exit code and output. */
function mocopyAsync(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { env: { ...process.env, MOCOPY_CONFIG: '/nonexistent/mocopy.json' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return { child, done: new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr }))) };
}

/** `mocopy center serve` as an operator starts it; resolves once it listens. */
async function startServe(ledger: string, port: number, extra: string[] = []): Promise<{ child: ChildProcess; url: string; lines: () => Array<Record<string, unknown>>; exit: Promise<number | null> }> {
  const { child, done } = mocopyAsync(['center', 'serve', '--db', ledger, '--listen', `127.0.0.1:${port}`, '--log-format', 'json', ...extra]);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await until('center listening', 30_000, async () => (/"msg":"listening"/.test(out) ? true : undefined));
  return { child, url: `http://127.0.0.1:${port}`, lines: () => out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>), exit: done.then((r) => r.code) };
}

describe('operable center: readiness, metrics, logs', function () {
  this.timeout(120_000);

  it('readiness follows the database: 503 within 2 s of losing it while /v1/health stays 200, 200 again within 5 s of its return, no restart', async function () {
    requirePostgres(this);
    const pg = await PgServer.start('ready');
    const lines: string[] = [];
    let running: RunningCenter | undefined;
    try {
      const url = await pg.freshLedger();
      running = await serveCenter({ db: url, port: 0, log: (l) => lines.push(l) });
      const get = async (p: string) => (await fetch(running!.url + p)).status;
      assert.equal(await get('/v1/ready'), 200);
      pg.stop('fast');
      const t0 = Date.now();
      await until('ready turns 503', 10_000, async () => ((await get('/v1/ready')) === 503 ? true : undefined));
      const down = Date.now() - t0;
      assert.equal(await get('/v1/health'), 200, 'liveness is not readiness');
      const body = await (await fetch(running.url + '/v1/ready')).json() as { ready: boolean; reason: string };
      assert.equal(body.ready, false);
      assert.match(body.reason, /^ledger: /);
      pg.start();
      const t1 = Date.now();
      await until('ready turns 200', 15_000, async () => ((await get('/v1/ready')) === 200 ? true : undefined));
      const up = Date.now() - t1;
      console.log(`      /v1/ready: 503 ${down} ms after the database stopped, 200 ${up} ms after it came back`);
      assert.ok(down <= 2000, `503 within 2 s (took ${down} ms)`);
      assert.ok(up <= 5000, `200 again within 5 s (took ${up} ms)`);
      await until('lifecycle lines', 5000, async () => (lines.some((l) => l.includes('"database regained"')) ? true : undefined));
      const events = lines.map((l) => JSON.parse(l) as { msg: string }).map((l) => l.msg).filter((m) => m !== 'request');
      assert.deepEqual(events.filter((m) => m.startsWith('database')), ['database lost', 'database regained']);
      // Serving again, on the same process.
      const metrics = await (await fetch(running.url + '/metrics')).text();
      assert.match(metrics, /^mocopy_ready 1$/m);
    } finally {
      await running?.close();
      pg.stopNow();
    }
  });

  it('logs: every line is JSON with a request ID and status; no key, MAC or nonce in any line; the ID reaches the technician', async () => {
    const w = await makeWorld();
    const lines: string[] = [];
    const running = await serveCenter({ db: w.ledger, port: 0, log: (l) => lines.push(l) });
    const secrets: string[] = [w.station.key.toString('hex'), w.station.key.toString('base64')];
    try {
      // Signed by hand, so the test knows every nonce and MAC that went over the wire.
      const send = async (body: string) => {
        const ts = String(Date.now());
        const nonce = randomBytes(16).toString('hex');
        const mac = requestMac(w.station.key, w.station.stationId, 'POST', '/v1/licenses', ts, nonce, body).toString('hex');
        secrets.push(nonce, mac);
        const r = await fetch(running.url + '/v1/licenses', { method: 'POST', body, headers: { [H.station]: w.station.stationId, [H.timestamp]: ts, [H.nonce]: nonce, [H.mac]: mac } });
        const text = await r.text();
        const responseMac = r.headers.get(H.responseMac);
        if (responseMac) secrets.push(responseMac);
        return { status: r.status, reqId: r.headers.get('x-request-id'), text };
      };
      const ok = await send(JSON.stringify(req({ scheme: 'b' })));
      assert.equal(ok.status, 200);
      const lic = JSON.parse(ok.text) as Record<string, string>;
      secrets.push(lic.wrappedMediumKey!, lic.wrappedMasterKey!); // license bodies are not logged either
      assert.equal((await send(JSON.stringify(req({ contentId: 'NOPE' })))).status, 404);
      assert.equal((await send('not json')).status, 400);
      await fetch(running.url + '/v1/health');
      await fetch(running.url + '/v1/nothing');
      // A refusal as the technician sees it: `mocopy copy` prints the center's request ID.
      const disc = w.newDisc('log.mo', '0a0b0c0d0e0f0102');
      await withCenter(w.ledger, (c) => c.revokeStation(w.station.stationId));
      const r = await mocopyAsync(['copy', `emu:${w.masterIso}`, `emu:${disc}`, '--content', 'APP-1', '--center', running.url, '--station-key', w.stationKeyPath]).done;
      assert.equal(r.code, 5, r.stderr);
      const shown = /center request ([0-9a-f-]{36})/.exec(r.stderr);
      assert.ok(shown, `the refusal names the center's request ID: ${r.stderr}`);
      const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      const requests = parsed.filter((l) => l.msg === 'request');
      assert.ok(requests.length >= 6);
      for (const l of requests) {
        assert.equal(typeof l.reqId, 'string');
        assert.equal(typeof l.status, 'number');
        assert.equal(typeof l.time, 'string');
      }
      const refused = requests.find((l) => l.reqId === shown![1]);
      assert.ok(refused, 'the technician\'s request ID is in the log');
      assert.equal(refused!.code, 'E_STATION_REVOKED');
      assert.equal(refused!.station, w.station.stationId);
      const all = lines.join('\n');
      for (const s of secrets) assert.ok(!all.includes(s), `a secret value (${s.slice(0, 6)}…) appears in the log`);
    } finally {
      await running.close();
      w.cleanup();
    }
  });

  it('metrics: the Prometheus text format with the documented series; no label carries a station or medium ID', async () => {
    const w = await makeWorld();
    const running = await serveCenter({ db: w.ledger, port: 0, log: () => undefined, metricsListen: { host: '127.0.0.1', port: 0 } });
    try {
      assert.notEqual(running.metricsUrl, running.url, 'metrics on their own port');
      assert.equal((await fetch(running.url + '/metrics')).status, 404, 'not on the service port when --metrics-listen is given');
      const client = new HttpCenterClient(running.url, w.station);
      for (let i = 0; i < 5; i++) await client.requestLicense(req({ scheme: i % 2 ? 'a' : 'b' }));
      const again = req();
      await client.requestLicense(again);
      await client.requestLicense(again); // answered from the ledger: not issued twice
      await client.requestLicense(req({ contentId: 'NOPE' })).catch(() => undefined);
      const text = await (await fetch(running.metricsUrl + '/metrics')).text();
      for (const name of ['mocopy_http_requests_total', 'mocopy_http_request_duration_seconds_bucket', 'mocopy_licenses_issued_total', 'mocopy_license_refusals_total',
        'mocopy_ledger_commit_duration_seconds_bucket', 'mocopy_ledger_batch_size_bucket', 'mocopy_inflight_requests', 'mocopy_ready', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_seconds']) {
        assert.match(text, new RegExp(`^${name}`, 'm'), name);
      }
      const value = (re: RegExp) => [...text.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
      assert.equal(value(/^mocopy_licenses_issued_total\{scheme="[ab]"\} (\d+)$/gm), 6);
      assert.equal(value(/^mocopy_license_refusals_total\{reason="unknown_content"\} (\d+)$/gm), 1);
      assert.equal(value(/^mocopy_http_requests_total\{route="license",status="200"\} (\d+)$/gm), 7);
      assert.ok(!text.includes(w.station.stationId), 'no station ID in any label');
      const labels = [...text.matchAll(/\{[^}]*\}/g)].map((m) => m[0]);
      assert.ok(labels.length > 20);
      assert.deepEqual(labels.filter((l) => /[0-9a-f]{16}/.test(l)), [], 'no medium ID or other identifier in any label');
    } finally {
      await running.close();
      w.cleanup();
    }
  });
});

describe('operable center with real Prometheus and nginx', function () {
  this.timeout(300_000);
  let pgs: PgServer;
  let w: World;
  let t: { dir: string; cleanup: () => void };
  before(async function () {
    requirePostgres(this);
    pgs = await sharedPostgres();
  });
  beforeEach(async () => {
    w = await makeWorld({ ledger: await pgs.freshLedger() });
    t = tempDir('mocopy-ops-');
  });
  afterEach(() => {
    w?.cleanup();
    t?.cleanup();
  });

  it('Prometheus scrapes two instances during a copy load; sum(mocopy_licenses_issued_total) equals the licenses in the ledger', async function () {
    requireTool(this, 'prometheus', 'prometheus');
    const ports = [await freePort(), await freePort()];
    const mports = [await freePort(), await freePort()];
    const instances = [];
    for (let i = 0; i < 2; i++) instances.push(await startServe(w.ledger, ports[i]!, ['--metrics-listen', `127.0.0.1:${mports[i]}`]));
    const promPort = await freePort();
    writeFileSync(join(t.dir, 'prometheus.yml'), [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      '  - job_name: mocopy-center',
      `    static_configs: [{ targets: ['127.0.0.1:${mports[0]}', '127.0.0.1:${mports[1]}'] }]`, '',
    ].join('\n'));
    const prom = spawn('prometheus', [`--config.file=${join(t.dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(t.dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { stdio: 'ignore' });
    const query = async (q: string) => {
      const r = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { data: { result: Array<{ value: [number, string] }> } };
      return r.data.result;
    };
    try {
      await until('both targets up', 30_000, async () => ((await query('sum(up{job="mocopy-center"})'))[0]?.value[1] === '2' ? true : undefined));
      // The load: technicians' `mocopy copy` runs, three through each instance, at the same time.
      const runs = [];
      for (let i = 0; i < 6; i++) {
        const disc = w.newDisc(`p${i}.mo`, `70${i}1020304050607`);
        runs.push(mocopyAsync(['copy', `emu:${w.masterIso}`, `emu:${disc}`, '--content', i % 2 ? 'APP-1' : 'APP-2', '--center', instances[i % 2]!.url, '--station-key', w.stationKeyPath, '--scheme', i % 3 ? 'a' : 'b']).done);
      }
      const results = await Promise.all(runs);
      for (const r of results) assert.equal(r.code, 0, r.stderr);
      const ledger = (await ledgerReport(w.ledger)).licenses.length;
      const seen = await until('Prometheus has scraped the last license', 20_000, async () => {
        const v = (await query('sum(mocopy_licenses_issued_total)'))[0]?.value[1];
        return v !== undefined && Number(v) === ledger ? Number(v) : undefined;
      }).catch(async () => Number((await query('sum(mocopy_licenses_issued_total)'))[0]?.value[1]));
      console.log(`      Prometheus: sum(mocopy_licenses_issued_total) = ${seen}; licenses in the ledger = ${ledger}`);
      assert.equal(ledger, 6);
      assert.equal(seen, ledger);
    } finally {
      prom.kill('SIGTERM');
      for (const i of instances) i.child.kill('SIGTERM');
      await Promise.all(instances.map((i) => i.exit));
    }
  });

  it('rolling restart behind nginx while stations copy: every copy exits 0, one license and one bill per disc', async function () {
    requireTool(this, 'nginx', 'nginx-light');
    const ports = [await freePort(), await freePort()];
    const front = await freePort();
    const conf = join(t.dir, 'nginx.conf');
    for (const d of ['body', 'proxy', 'fcgi', 'uwsgi', 'scgi']) mkdirSync(join(t.dir, d));
    writeFileSync(conf, `daemon off;
worker_processes 1;
pid ${t.dir}/nginx.pid;
error_log ${t.dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${t.dir}/body; proxy_temp_path ${t.dir}/proxy; fastcgi_temp_path ${t.dir}/fcgi; uwsgi_temp_path ${t.dir}/uwsgi; scgi_temp_path ${t.dir}/scgi;
  upstream centers {
    server 127.0.0.1:${ports[0]} max_fails=1 fail_timeout=2s;
    server 127.0.0.1:${ports[1]} max_fails=1 fail_timeout=2s;
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${front};
    location / {
      proxy_pass http://centers;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # A license request is idempotent by design (its request ID): safe to pass on to the other instance.
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
      proxy_next_upstream_tries 2;
      proxy_connect_timeout 1s;
    }
  }
}
`);
    const nginx = spawn('nginx', ['-c', conf, '-p', t.dir, '-e', join(t.dir, 'error.log')], { stdio: 'ignore' });
    const instances = [await startServe(w.ledger, ports[0]!, ['--drain-ms', '1000']), await startServe(w.ledger, ports[1]!, ['--drain-ms', '1000'])];
    const url = `http://127.0.0.1:${front}`;
    await until('nginx answers', 10_000, async () => ((await fetch(url + '/v1/health')).ok ? true : undefined));
    let stop = false;
    const outcomes: Array<{ disc: string; code: number | null; stderr: string }> = [];
    let n = 0;
    // Four technicians copying back to back for the whole restart.
    const copiers = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const i = n++;
        const disc = w.newDisc(`r${i}.mo`, `5e${i.toString(16).padStart(4, '0')}0102030405`);
        const r = await mocopyAsync(['copy', `emu:${w.masterIso}`, `emu:${disc}`, '--content', 'APP-1', '--center', url, '--station-key', w.stationKeyPath, '--scheme', i % 2 ? 'a' : 'b']).done;
        outcomes.push({ disc, code: r.code, stderr: r.stderr });
      }
    });
    const restarts: string[] = [];
    try {
      await sleep(3000);
      for (let k = 0; k < 2; k++) {
        const before = outcomes.length;
        instances[k]!.child.kill('SIGTERM');
        const code = await instances[k]!.exit;
        assert.equal(code, 0, 'a drained instance exits 0');
        const events = instances[k]!.lines().map((l) => l.msg).filter((m) => m !== 'request');
        assert.deepEqual(events, ['listening', 'draining', 'stopped']);
        instances[k] = await startServe(w.ledger, ports[k]!, ['--drain-ms', '1000']);
        await sleep(2500);
        restarts.push(`instance ${k + 1} restarted (${outcomes.length - before} copies finished meanwhile)`);
      }
      await sleep(1000);
    } finally {
      stop = true;
      await Promise.all(copiers);
      for (const i of instances) i.child.kill('SIGTERM');
      await Promise.all(instances.map((i) => i.exit));
      nginx.kill('SIGQUIT');
    }
    const failed = outcomes.filter((o) => o.code !== 0);
    const rep = await ledgerReport(w.ledger);
    const f = billingFigures(rep);
    const perDisc = new Map<string, number>();
    for (const l of rep.licenses) perDisc.set(l.mediumId, (perDisc.get(l.mediumId) ?? 0) + 1);
    console.log(`      ${restarts.join('; ')}; copies ${outcomes.length}, failed ${failed.length}; licenses ${f.licenses}, bills ${f.bills}, discs with more than one license ${[...perDisc.values()].filter((v) => v > 1).length}`);
    assert.deepEqual(failed.map((o) => o.stderr), [], 'no copy failed');
    assert.ok(outcomes.length >= 8, 'copies ran throughout');
    assert.equal(f.licenses, outcomes.length, 'one license per disc');
    assert.equal(perDisc.size, outcomes.length);
    assert.equal(f.doubleBilled + f.unbilled + f.orphanBills, 0);
  });
});
