import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { LicenseCenter } from '../lib/center/center.js';
import { H, requestMac } from '../lib/center/http-auth.js';
import { HttpCenterClient } from '../lib/center/http-client.js';
import { SqliteLedger } from '../lib/center/ledger.js';
import { serveCenter, type RunningCenter } from '../lib/center/server.js';
import type { LicenseA, LicenseB, LicenseRequest, StationKey } from '../lib/domain/index.js';
import { unwrapKey } from '../lib/crypto/keywrap.js';
import { certificateCode, unwrapUnderMedium } from '../lib/crypto/scheme.js';
import { MocopyError } from '../lib/errors.js';
import { openCopy } from '../lib/protocol/open-copy.js';
import { copyLicensed } from '../lib/protocol/station.js';
import { openDevice } from '../lib/drives/open.js';
import { makeWorld, type World, ledgerReport, withCenter } from './helpers/fixtures.js';
import { LEDGER_BACKENDS, requirePostgres, worldLedger } from './helpers/postgres.js';

const req = (over: Partial<LicenseRequest> = {}): LicenseRequest => ({ requestId: randomUUID(), scheme: 'a', contentId: 'APP-1', mediumId: randomBytes(8).toString('hex'), ...over });
const fast = { attempts: 4, initialDelayMs: 10, maxDelayMs: 50, timeoutMs: 5000 };

/** A loopback proxy in front of the center whose behaviour a test scripts per request. */
async function proxy(target: string, onResponse: (n: number, status: number, headers: Record<string, string>, body: Buffer) => { drop?: boolean; body?: Buffer; status?: number; headers?: Record<string, string> }): Promise<{ url: string; server: Server }> {
  let n = 0;
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      const i = n++;
      const fwd = httpRequest(target + req.url, { method: req.method, headers: req.headers }, (up) => {
        const body: Buffer[] = [];
        up.on('data', (c) => body.push(c));
        up.on('end', () => {
          const r = onResponse(i, up.statusCode!, up.headers as Record<string, string>, Buffer.concat(body));
          if (r.drop) { res.socket?.destroy(); return; }
          const b = r.body ?? Buffer.concat(body);
          const h: Record<string, string> = { ...((r.headers ?? up.headers) as Record<string, string>), 'content-length': String(b.length) };
          delete h['transfer-encoding'];
          res.writeHead(r.status ?? up.statusCode!, h);
          res.end(b);
        });
      });
      fwd.end(Buffer.concat(parts));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

for (const backend of LEDGER_BACKENDS) describe(`license center [${backend}]`, function () {
  this.timeout(60_000);
  let w: World;
  before(function () { if (backend === 'postgres') requirePostgres(this); });
  beforeEach(async () => { w = await makeWorld(await worldLedger(backend)); });
  afterEach(() => w.cleanup());
  const report = async () => (await ledgerReport(w.ledger));

  describe('logic and ledger', () => {
    it('scheme A and B licenses verify with the station-side recipes; the ledger file is private', async () => {
      const c = await LicenseCenter.open(w.ledger);
      const mid = Buffer.from('0102030405060708', 'hex');
      const a = (await c.issue(w.station.stationId, req({ mediumId: mid.toString('hex') }))) as LicenseA;
      const keyC = unwrapKey(w.station.key, Buffer.from(a.wrappedCertificationKey, 'hex'));
      assert.equal(certificateCode(keyC, mid, 'APP-1').toString('hex'), a.certificate);
      const b = (await c.issue(w.station.stationId, req({ scheme: 'b', mediumId: mid.toString('hex') }))) as LicenseB;
      const ku = unwrapUnderMedium(mid, Buffer.from(b.wrappedMediumKey, 'hex'));
      assert.equal(ku.length, 32);
      await c.close();
      const { statSync } = await import('node:fs');
      if (backend === 'sqlite') assert.equal(statSync(w.ledger).mode & 0o077, 0, 'ledger is mode 0600');
      assert.equal(statSync(w.stationKeyPath).mode & 0o777, 0o600, 'station key is mode 0600');
    });
    it('is idempotent: the same request, or the same station+medium+content+scheme, bills once; a reused request ID with other fields conflicts', async () => {
      const c = await LicenseCenter.open(w.ledger);
      const r = req();
      const l1 = await c.issue(w.station.stationId, r);
      const l2 = await c.issue(w.station.stationId, r);
      const l3 = await c.issue(w.station.stationId, { ...r, requestId: randomUUID() });
      assert.deepEqual(l2, l1);
      assert.deepEqual(l3, l1);
      await assert.rejects(c.issue(w.station.stationId, { ...r, contentId: 'APP-2' }), (e: MocopyError) => e.code === 'E_REQUEST_CONFLICT');
      await c.close();
      const rep = (await report());
      assert.equal(rep.licenses.length, 1);
      assert.equal(rep.billing.length, 1);
      assert.equal(rep.billing[0]!.amount, 1500);
    });
  });

  describe('HTTP service', () => {
    let running: RunningCenter;
    let logs: string[];
    beforeEach(async () => {
      logs = [];
      running = await serveCenter({ db: w.ledger, port: 0, log: (l) => logs.push(l) });
    });
    afterEach(() => running.close());
    const client = (station: StationKey = w.station, url = running.url) => new HttpCenterClient(url, station, fast);

    it('issues licenses, lists contents, answers health; logs a line per request without keys', async () => {
      const l = await client().requestLicense(req());
      assert.equal(l.scheme, 'a');
      const b = (await client().requestLicense(req({ scheme: 'b', mediumId: '0102' }))) as LicenseB;
      unwrapUnderMedium(Buffer.from('0102', 'hex'), Buffer.from(b.wrappedMediumKey, 'hex'));
      assert.deepEqual((await client().listContents()).map((c) => c.contentId), ['APP-1', 'APP-2']);
      assert.equal((await client().health()).ok, true);
      const requests = logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request');
      assert.equal(requests.length, 4);
      const all = logs.join('\n');
      assert.ok(!all.includes(w.station.key.toString('hex')));
      assert.match(JSON.stringify(requests[0]), /"reqId":"[0-9a-f-]{36}".*"route":"license".*"status":200.*"ms":.*"station":"st-[0-9a-f]+".*"content":"APP-1"/);
    });

    it('refuses with stable codes: unknown station and bad MAC alike, revoked, unknown content, scheme not allowed', async () => {
      const codes = async (p: Promise<unknown>) => { try { await p; return 'ok'; } catch (e) { return (e as MocopyError).code; } };
      assert.equal(await codes(client({ ...w.station, stationId: 'st-nobody' }).requestLicense(req())), 'E_UNAUTHORIZED');
      assert.equal(await codes(client({ ...w.station, key: randomBytes(32) }).requestLicense(req())), 'E_UNAUTHORIZED');
      assert.equal(await codes(client().requestLicense(req({ contentId: 'NOPE' }))), 'E_UNKNOWN_CONTENT');
      await withCenter(w.ledger, async (c) => {
        await c.registerContent({ contentId: 'ONLY-A', name: 'x', schemes: ['a'] });
        await c.revokeStation((await c.addStation('other')).stationId);
      });
      assert.equal(await codes(client().requestLicense(req({ contentId: 'ONLY-A', scheme: 'b' }))), 'E_SCHEME_NOT_ALLOWED');
      // Revoked through another connection (as another instance would): the next request is refused.
      await withCenter(w.ledger, (c) => c.revokeStation(w.station.stationId));
      assert.equal(await codes(client().requestLicense(req())), 'E_STATION_REVOKED');
      assert.equal((await report()).billing.length, 0);
    });

    it('refuses a stale timestamp, a replayed nonce, malformed fields and oversized bodies, with JSON errors and no stack traces', async () => {
      const send = async (body: string, o: { ts?: number; nonce?: string; mac?: string } = {}) => {
        const ts = String(o.ts ?? Date.now());
        const nonce = o.nonce ?? randomBytes(16).toString('hex');
        const mac = o.mac ?? requestMac(w.station.key, w.station.stationId, 'POST', '/v1/licenses', ts, nonce, body).toString('hex');
        const r = await fetch(running.url + '/v1/licenses', { method: 'POST', body, headers: { [H.station]: w.station.stationId, [H.timestamp]: ts, [H.nonce]: nonce, [H.mac]: mac } });
        return { status: r.status, body: (await r.json()) as { error?: { code: string; message: string } } };
      };
      const body = JSON.stringify(req());
      assert.equal((await send(body, { ts: Date.now() - 10 * 60_000 })).body.error!.code, 'E_STALE_TIMESTAMP');
      const nonce = randomBytes(16).toString('hex');
      assert.equal((await send(body, { nonce })).status, 200);
      const replay = await send(body, { nonce });
      assert.equal(replay.body.error!.code, 'E_REPLAYED_NONCE');
      for (const bad of [{ ...req(), mediumId: 'xyz' }, { ...req(), scheme: 'c' }, { ...req(), requestId: 'not-a-uuid' }, { ...req(), contentId: '../etc' }, [1, 2]]) {
        const r = await send(JSON.stringify(bad));
        assert.equal(r.status, 400, JSON.stringify(bad));
        assert.equal(r.body.error!.code, 'E_BAD_REQUEST');
        assert.ok(!/at .*\.ts:\d+/.test(r.body.error!.message), 'no stack trace');
      }
      const big = await send(JSON.stringify({ ...req(), pad: 'x'.repeat(20_000) }));
      assert.equal(big.status, 413);
      assert.equal((await fetch(running.url + '/v1/nothing')).status, 404);
    });

    it('refuses a tampered response and a response replayed to another request', async () => {
      let saved: { body: Buffer; headers: Record<string, string> } | undefined;
      const p = await proxy(running.url, (i, _s, headers, body) => {
        if (i === 0) {
          const tampered = Buffer.from(body.toString().replace(/"certificate":"(.)/, (_m, c) => `"certificate":"${c === '0' ? '1' : '0'}`));
          return { body: tampered };
        }
        if (i === 1) { saved = { body, headers }; return {}; }
        return { body: saved!.body, headers: saved!.headers };
      });
      try {
        await assert.rejects(client(w.station, p.url).requestLicense(req()), (e: MocopyError) => e.code === 'E_BAD_RESPONSE_MAC');
        await client(w.station, p.url).requestLicense(req());
        await assert.rejects(client(w.station, p.url).requestLicense(req()), (e: MocopyError) => e.code === 'E_BAD_RESPONSE_MAC');
      } finally {
        p.server.close();
      }
    });

    it('retries after a lost response and gets the same license, billed once; 4xx is not retried', async () => {
      let calls = 0;
      const p = await proxy(running.url, (i) => { calls++; return i === 0 ? { drop: true } : {}; });
      try {
        const r = req();
        const l = await client(w.station, p.url).requestLicense(r);
        assert.equal(calls, 2);
        const rep = (await report());
        assert.equal(rep.licenses.length, 1);
        assert.equal(rep.billing.length, 1);
        assert.equal(rep.licenses[0]!.id, l.licenseId);
        calls = 0;
        await assert.rejects(client(w.station, p.url).requestLicense(req({ contentId: 'NOPE' })));
        assert.equal(calls, 1, 'a refusal is final');
      } finally {
        p.server.close();
      }
    });

    it('serves many stations at once: every license billed exactly once', async () => {
      const stations = await withCenter(w.ledger, async (c) => Promise.all(Array.from({ length: 8 }, (_, i) => c.addStation(`s${i}`))));
      const results = await Promise.all(stations.flatMap((s) => Array.from({ length: 12 }, (_, j) => client(s).requestLicense(req({ scheme: j % 2 ? 'a' : 'b' })))));
      const rep = (await report());
      assert.equal(results.length, 96);
      assert.equal(rep.licenses.length, 96);
      assert.equal(rep.billing.length, 96);
      assert.equal(new Set(rep.billing.map((b) => b.licenseId)).size, 96);
      if (running.center.ledger instanceof SqliteLedger) {
        const { stats } = running.center.ledger;
        assert.ok(stats.commits < 96, `group commit batched ${stats.items} items into ${stats.commits} commits`);
      }
    });

    for (const scheme of ['a', 'b'] as const) {
      it(`a full copy through the HTTP center, scheme ${scheme.toUpperCase()}`, async () => {
        const disc = w.newDisc('h.mo', 'abcdef0123456789');
        const master = await openDevice(`emu:${w.masterIso}`);
        const target = await openDevice(`emu:${disc}`);
        await copyLicensed({ master, target, contentId: 'APP-1', scheme, center: client(), stationKey: w.station });
        const out = new PassThrough();
        const parts: Buffer[] = [];
        out.on('data', (b) => parts.push(b));
        await openCopy({ target, contentId: 'APP-1', stationKey: w.station, out });
        assert.ok(Buffer.concat(parts).equals(w.programs['APP-1']!));
        await master.close();
        await target.close();
      });
    }
  });

  it('killed with SIGKILL mid-load and restarted: every license a station received is in the ledger with exactly one billing row', async function () {
    this.timeout(120_000);
    const start = (port = 0): Promise<{ child: ChildProcess; url: string }> => new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'center-fixtures', 'serve.ts'), w.ledger, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
      child.stdout!.once('data', (d) => resolve({ child, url: String(d).trim() }));
      child.once('exit', (code) => reject(new Error(`center exited early (${code})`)));
    });
    const stations = await withCenter(w.ledger, async (c) => Promise.all(Array.from({ length: 6 }, (_, i) => c.addStation(`k${i}`))));
    let { child, url } = await start();
    const port = Number(new URL(url).port);
    const received: Array<{ id: string; station: string }> = [];
    let stop = false;
    const workers = stations.map(async (s) => {
      const cl = new HttpCenterClient(url, s, { attempts: 40, initialDelayMs: 25, maxDelayMs: 200, timeoutMs: 3000 });
      for (let i = 0; i < 60 && !stop; i++) {
        const l = await cl.requestLicense(req({ scheme: i % 2 ? 'a' : 'b' }));
        received.push({ id: l.licenseId, station: s.stationId });
      }
    });
    // Kill it once licenses are flowing (not after a fixed delay: a slow machine may not have started yet).
    for (let waited = 0; received.length < 30 && waited < 30_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const killedAt = received.length;
    ({ child } = await start(port));
    await Promise.all(workers);
    stop = true;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const rep = (await report());
    assert.ok(killedAt > 0 && killedAt < received.length, `the kill landed mid-load (${killedAt} of ${received.length} received before it)`);
    const licenseIds = new Set(rep.licenses.map((l) => l.id));
    for (const r of received) assert.ok(licenseIds.has(r.id), `license ${r.id} acknowledged to ${r.station} is in the ledger`);
    const perLicense = new Map<string, number>();
    for (const b of rep.billing) perLicense.set(b.licenseId, (perLicense.get(b.licenseId) ?? 0) + 1);
    for (const l of rep.licenses) assert.equal(perLicense.get(l.id), 1, `license ${l.id} has exactly one billing row`);
    for (const b of rep.billing) assert.ok(licenseIds.has(b.licenseId), 'no billing row without its license');
  });
});
