/** Hostile input at the license center (issue 17): replays of refused requests, station-name probing. */
import { strict as assert } from 'node:assert';
import { request as httpRequest } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { centerAuth, LicenseCenter, Ledger, serveCenter, type RunningCenter } from '../lib/index.js';
import { makeWorld, type World, ledgerReport, withCenter } from './helpers/fixtures.js';
import { LEDGER_BACKENDS, requirePostgres, worldLedger } from './helpers/postgres.js';

const { H, requestMac } = centerAuth;

for (const backend of LEDGER_BACKENDS) describe(`hostile input: the license center [${backend}]`, function () {
  this.timeout(60_000);
  let w: World;
  let running: RunningCenter;
  before(function () { if (backend === 'postgres') requirePostgres(this); });
  beforeEach(async () => {
    w = await makeWorld(await worldLedger(backend));
    running = await serveCenter({ db: w.ledger, port: 0, log: () => undefined });
  });
  afterEach(async () => {
    await running.close();
    w.cleanup();
  });
  const report = async () => (await ledgerReport(w.ledger));

  /** A signed request as a station (or an attacker who recorded one) sends it: exact bytes and headers. */
  function signed(body: string, o: { stationId?: string; key?: Buffer } = {}) {
    const stationId = o.stationId ?? w.station.stationId;
    const ts = String(Date.now());
    const nonce = randomBytes(16).toString('hex');
    const mac = requestMac(o.key ?? w.station.key, stationId, 'POST', '/v1/licenses', ts, nonce, body).toString('hex');
    return { body, headers: { [H.station]: stationId, [H.timestamp]: ts, [H.nonce]: nonce, [H.mac]: mac } };
  }
  async function send(r: { body: string; headers: Record<string, string> }) {
    const res = await fetch(running.url + '/v1/licenses', { method: 'POST', body: r.body, headers: r.headers });
    return { status: res.status, text: await res.text() };
  }

  it('a refused request replayed after its cause is gone is refused again: no license, no bill', async () => {
    const recorded = signed(JSON.stringify({ requestId: randomUUID(), scheme: 'a', contentId: 'LATER-1', mediumId: '0a0b0c0d' }));
    const first = await send(recorded);
    assert.equal(first.status, 404);
    assert.match(first.text, /E_UNKNOWN_CONTENT/);
    // The cause goes away: the publisher registers the content.
    await withCenter(w.ledger, (c) => c.registerContent({ contentId: 'LATER-1', name: 'later', schemes: ['a'], price: 900 }));
    const replay = await send(recorded);
    assert.equal(replay.status, 401);
    assert.match(replay.text, /E_REPLAYED_NONCE/);
    assert.equal((await report()).licenses.length, 0);
    assert.equal((await report()).billing.length, 0);
  });

  it('a request refused as malformed (after authentication) spends its nonce too', async () => {
    const recorded = signed('{"requestId": "not a uuid"}');
    assert.equal((await send(recorded)).status, 400);
    const replay = await send(recorded);
    assert.equal(replay.status, 401);
    assert.match(replay.text, /E_REPLAYED_NONCE/);
  });

  it('a request refused for a revoked station spends its nonce; reinstating nothing helps a replay', async () => {
    const recorded = signed(JSON.stringify({ requestId: randomUUID(), scheme: 'a', contentId: 'APP-1', mediumId: '0102' }));
    await withCenter(w.ledger, (c) => c.revokeStation(w.station.stationId));
    assert.equal((await send(recorded)).status, 403);
    // Whatever the station's state now, the recorded bytes never buy a license.
    const replay = await send(recorded);
    assert.equal(replay.status, 401);
    assert.equal((await report()).billing.length, 0);
  });

  it('a query string the MAC does not cover is refused; a malformed nonce is a header error, not a MAC error', async () => {
    const body = JSON.stringify({ requestId: randomUUID(), scheme: 'a', contentId: 'APP-1', mediumId: '0102' });
    const r = signed(body);
    const withQuery = await fetch(running.url + '/v1/licenses?price=0', { method: 'POST', body: r.body, headers: r.headers });
    assert.equal(withQuery.status, 400);
    assert.match(await withQuery.text(), /query string/);
    // A target that only normalises to the path ('/v1/./licenses') is refused: the MAC covers what was sent.
    const dotted = signed(body);
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL(running.url);
      const rq = httpRequest({ host: u.hostname, port: u.port, method: 'POST', path: '/v1/./licenses', headers: dotted.headers }, (res) => { res.resume(); resolve(res.statusCode!); });
      rq.on('error', reject);
      rq.end(dotted.body);
    });
    assert.equal(status, 400);
    const badNonce = signed(body);
    badNonce.headers[H.nonce] = badNonce.headers[H.nonce]!.toUpperCase();
    const res = await send(badNonce);
    assert.equal(res.status, 400);
    assert.match(res.text, /E_BAD_HEADERS.*x-mocopy-nonce.*32 lowercase hex/);
    const missing = signed(body);
    delete (missing.headers as Record<string, string | undefined>)[H.timestamp];
    assert.match((await send(missing)).text, /E_BAD_HEADERS.*missing header x-mocopy-timestamp/);
    // None of these bought anything, and the correctly signed request still works afterwards.
    assert.equal((await report()).billing.length, 0);
    assert.equal((await send(signed(body))).status, 200);
  });

  it('unknown station and wrong MAC are indistinguishable: same status, same body', async () => {
    const body = JSON.stringify({ requestId: randomUUID(), scheme: 'a', contentId: 'APP-1', mediumId: '0102' });
    const unknown = await send(signed(body, { stationId: 'st-00000000' }));
    const wrongKey = await send(signed(body, { key: randomBytes(32) }));
    const malformedId = await send(signed(body, { stationId: 'not a station!' }));
    assert.equal(unknown.status, 401);
    assert.deepEqual(wrongKey, unknown);
    // A malformed ID is told apart (its shape is public, so this reveals no station), naming the header.
    assert.equal(malformedId.status, 400);
    assert.match(malformedId.text, /E_BAD_HEADERS.*x-mocopy-station/);
    assert.match(unknown.text, /E_UNAUTHORIZED/);
    assert.doesNotMatch(unknown.text, /st-00000000/);
    // Timing is printed, never asserted (machines are noisy): both paths compute one MAC.
    // Interleaved, after a warm-up, so JIT and caches favour neither path.
    const samples: Record<'unknown' | 'wrongMac', number[]> = { unknown: [], wrongMac: [] };
    for (let i = 0; i < 160; i++) {
      const which = i % 2 ? 'unknown' : 'wrongMac';
      const r = which === 'unknown' ? signed(body, { stationId: 'st-00000000' }) : signed(body, { key: randomBytes(32) });
      const t0 = process.hrtime.bigint();
      await send(r);
      if (i >= 40) samples[which].push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
    const median = (t: number[]) => t.sort((x, y) => x - y)[t.length >> 1]!;
    const [a, b] = [median(samples.unknown), median(samples.wrongMac)];
    console.log(`      median µs: unknown station ${a.toFixed(0)}, wrong MAC ${b.toFixed(0)} (ratio ${(a / b).toFixed(2)})`);
  });

  it('a request target that is not a path (GET //) is answered 400, and the center keeps serving', async () => {
    // Node's HTTP parser passes '//' and '//[' through; new URL() throws on them. That throw used to escape the
    // handler as an unhandled rejection: no answer, and `mocopy center serve` stopped.
    const raw = (target: string) => new Promise<string>((resolve, reject) => {
      const s = connect(running.port, '127.0.0.1', () => s.write(`GET ${target} HTTP/1.1\r\nHost: center\r\nConnection: close\r\n\r\n`));
      let out = '';
      s.on('data', (d) => (out += d));
      s.on('close', () => resolve(out));
      s.on('error', reject);
      s.setTimeout(5000, () => { s.destroy(); resolve(out); });
    });
    for (const target of ['//', '//[', '//x:99999/v1/health']) {
      const reply = await raw(target);
      assert.match(reply, /^HTTP\/1\.1 400 /, `${target}: ${reply.split('\r\n')[0] || 'no answer'}`);
      assert.match(reply, /E_BAD_REQUEST/);
    }
    assert.match(await raw('/v1/health'), /^HTTP\/1\.1 200 /);
  });
});
