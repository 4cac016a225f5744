import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { createConsole, type ConsoleOptions } from '../lib/center/console/console.js';
import { openLedger } from '../lib/center/ledger.js';
import { serveCenter, type RunningCenter } from '../lib/center/server.js';
import { HttpCenterClient } from '../lib/center/http-client.js';
import { makeWorld, ledgerReport, type World } from './helpers/fixtures.js';
import { LEDGER_BACKENDS, requirePostgres, worldLedger } from './helpers/postgres.js';
import { addOperator, Agent, call, cli, cookieOf, csrfOf } from './console-helpers.js';

const PW = 'correct horse battery';

for (const backend of LEDGER_BACKENDS) describe(`operators' console over HTTP [${backend}]`, function () {
  this.timeout(90_000);
  let w: World;
  let running: RunningCenter;
  let clock: number | undefined;
  const opts: ConsoleOptions = { now: () => clock ?? Date.now() };
  before(function () { if (backend === 'postgres') requirePostgres(this); });
  beforeEach(async () => {
    clock = undefined;
    w = await makeWorld(await worldLedger(backend));
    await addOperator(w.ledger, 'alice', 'admin', PW);
    await addOperator(w.ledger, 'victor', 'viewer', PW);
    running = await serveCenter({ db: w.ledger, port: 0, log: () => {}, console: (c) => createConsole(c, opts) });
  });
  afterEach(async () => {
    await running.close();
    w.cleanup();
  });

  it('pages are sent with CSP, X-Frame-Options DENY, no-store and a CSRF meta tag; without a session they redirect to sign-in', async () => {
    const a = new Agent(running.url);
    const r = await a.get('/console/licenses');
    assert.equal(r.status, 303);
    assert.equal(r.headers.location, '/console/sign-in');
    const s = await a.get('/console/sign-in');
    assert.equal(s.status, 200);
    assert.match(String(s.headers['content-security-policy']), /^default-src 'self'/);
    assert.equal(s.headers['x-frame-options'], 'DENY');
    assert.equal(s.headers['cache-control'], 'no-store');
    assert.equal(s.headers['server-timing'], undefined, 'no timings before sign-in');
    assert.ok(csrfOf(s.body).length > 20);
    assert.doesNotMatch(s.body, /<script>|<script [^>]*>[^<]/, 'no inline script');
    assert.doesNotMatch(s.body, / on[a-z]+=/, 'no inline event handlers');
    assert.doesNotMatch(s.body, /style=/, 'no inline styles');
    for (const p of ['/console/', '/console/stations', '/console/contents', '/console/audit', '/console/licenses.csv', '/console/events']) {
      assert.ok([303, 401].includes((await call(running.url + p)).status), p);
    }
    assert.equal((await call(running.url + '/console/static/console.css')).status, 200);
  });

  it('sign-in sets an HttpOnly SameSite=Strict session cookie; sign-out ends the session; wrong passwords and a missing form token are refused', async () => {
    const a = new Agent(running.url);
    await a.get('/console/sign-in');
    assert.equal((await a.post('/console/sign-in', { name: 'alice', password: PW }, { csrf: null })).status, 403, 'sign-in form without its token');
    const bad = await a.post('/console/sign-in', { name: 'alice', password: 'wrong password!' });
    assert.equal(bad.status, 401);
    assert.match(bad.body, /Wrong name or password/);
    assert.equal((await a.post('/console/sign-in', { name: 'nobody', password: PW })).status, 401);
    const ok = await a.post('/console/sign-in', { name: 'alice', password: PW });
    assert.equal(ok.status, 303);
    const c = cookieOf(ok, 'mocopy_console')!;
    assert.match(c, /HttpOnly/);
    assert.match(c, /SameSite=Strict/);
    assert.match(c, /Path=\/console/);
    assert.doesNotMatch(c, /Secure/, 'not over plain HTTP');
    const home = await a.get('/console/');
    assert.equal(home.status, 200);
    assert.match(home.body, /<h1>Overview<\/h1>/);
    const page = await a.get('/console/licenses');
    assert.match(String(page.headers['server-timing']), /^db;dur=\d+\.\d+, render;dur=\d+\.\d+, total;dur=\d+\.\d+$/, 'signed-in pages say where their time went');
    assert.match(home.body, /alice · admin/);
    const token = a.cookies.get('mocopy_console')!;
    assert.equal((await a.post('/console/sign-out', {})).status, 303);
    assert.equal((await call(running.url + '/console/', { headers: { cookie: `mocopy_console=${token}` } })).status, 303, 'the old cookie no longer works');
    assert.ok(!JSON.stringify(await (await openLedger(w.ledger, { create: false })).operators()).includes('scrypt'), 'operators() lists no hashes');
  });

  it('sessions end after 30 min idle and after 12 h however active', async () => {
    const a = new Agent(running.url);
    clock = 1_000_000_000_000;
    await a.signIn('alice', PW);
    clock += 29 * 60_000;
    assert.equal((await a.get('/console/')).status, 200);
    clock += 31 * 60_000;
    assert.equal((await a.get('/console/')).status, 303, 'idle for 31 min');
    await a.signIn('alice', PW);
    for (let i = 0; i < 25; i++) {
      clock += 29 * 60_000;
      const r = await a.get('/console/');
      if (i < 24) assert.equal(r.status, 200, `after ${(i + 1) * 29} min`);
      else assert.equal(r.status, 303, 'after 12 h 5 min');
    }
  });

  it('CSRF: a POST without the token or with another session\'s is 403 and changes nothing; a viewer\'s POST is 403; an admin\'s is audited', async () => {
    const admin = new Agent(running.url);
    await admin.signIn('alice', PW);
    await admin.get('/console/contents');
    const viewer = new Agent(running.url);
    await viewer.signIn('victor', PW);
    await viewer.get('/console/contents');
    assert.notEqual(admin.csrf, viewer.csrf);
    assert.equal((await admin.post('/console/contents/price', { id: 'APP-1', price: '99' }, { csrf: null })).status, 403);
    assert.equal((await admin.post('/console/contents/price', { id: 'APP-1', price: '99' }, { csrf: viewer.csrf })).status, 403);
    assert.equal((await admin.post('/console/contents/price', { id: 'APP-1', price: '99' }, { csrf: admin.csrf.slice(0, -1) + (admin.csrf.endsWith('A') ? 'B' : 'A') })).status, 403);
    const v = await viewer.post('/console/contents/price', { id: 'APP-1', price: '99' });
    assert.equal(v.status, 403);
    assert.match(v.body, /Viewers can look but not change/);
    assert.equal((await viewer.post('/console/stations', { name: 'x' })).status, 403);
    assert.doesNotMatch((await viewer.get('/console/contents')).body, /Set price/, 'a viewer is not shown the forms');
    assert.equal((await admin.post('/console/contents/price', { id: 'APP-1', price: '99' }, { headers: { origin: 'http://evil.example' } })).status, 403, 'cross-origin');
    const l = await openLedger(w.ledger, { create: false });
    try {
      assert.equal((await l.content('APP-1'))!.price, 1500, 'nothing changed');
      assert.equal((await l.auditLog({ action: 'content.price' }, undefined, 10)).length, 0);
      const ok = await admin.post('/console/contents/price', { id: 'APP-1', price: '25.50' });
      assert.equal(ok.status, 200);
      assert.equal((await l.content('APP-1'))!.price, 2550);
      const [row] = await l.auditLog({ action: 'content.price' }, undefined, 10);
      assert.equal(row!.operator, 'alice');
      assert.match(row!.address, /127\.0\.0\.1/);
      assert.deepEqual([JSON.parse(row!.before!), JSON.parse(row!.after!)], [{ price: 1500 }, { price: 2550 }]);
    } finally {
      await l.close();
    }
  });

  it('console routes refuse station MAC headers; the station API refuses a console cookie', async () => {
    const a = new Agent(running.url);
    await a.signIn('alice', PW);
    const r = await a.get('/console/', { 'x-mocopy-station': w.station.stationId, 'x-mocopy-mac': '0'.repeat(64) });
    assert.equal(r.status, 400);
    assert.match(r.body, /does not accept station authentication/);
    const api = await call(running.url + '/v1/contents', { headers: { cookie: a.cookieHeader } });
    assert.equal(api.status, 400);
    assert.equal(JSON.parse(api.body).error.code, 'E_BAD_HEADERS');
  });

  it('after 5 failed sign-ins for a name each further attempt waits longer (1 s, then 2 s), the right password included; other names are not affected', async () => {
    const a = new Agent(running.url);
    await a.get('/console/sign-in');
    for (let i = 0; i < 4; i++) assert.equal((await a.post('/console/sign-in', { name: 'alice', password: `wrong ${i} password` })).status, 401);
    const fifth = await a.post('/console/sign-in', { name: 'alice', password: 'wrong 5 password' });
    assert.equal(fifth.status, 401);
    assert.match(fifth.body, /wait 1 s/);
    const locked = await a.post('/console/sign-in', { name: 'alice', password: PW });
    assert.equal(locked.status, 429, 'the right password, too soon');
    assert.equal((await new Agent(running.url).signIn('victor', PW)).status, 303, 'another name signs in');
    await new Promise((r) => setTimeout(r, 1100));
    const sixth = await a.post('/console/sign-in', { name: 'alice', password: 'wrong 6 password' });
    assert.equal(sixth.status, 401);
    assert.match(sixth.body, /wait 2 s/);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await a.post('/console/sign-in', { name: 'alice', password: PW })).status, 429, 'still waiting after 1.1 s of 2 s');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await a.post('/console/sign-in', { name: 'alice', password: PW })).status, 303);
    const l = await openLedger(w.ledger, { create: false });
    assert.equal(await l.signInFailures('alice'), undefined, 'a good sign-in clears the count');
    await l.close();
  });

  it('names from the ledger are escaped; an added station\'s key file is downloaded once and works; revoke refuses its next request; bills keep their price', async () => {
    const a = new Agent(running.url);
    await a.signIn('alice', PW);
    await a.get('/console/stations');
    const xss = '<img src=x onerror=alert(1)>';
    const added = await a.post('/console/stations', { name: xss });
    assert.equal(added.status, 200);
    assert.ok(!added.body.includes(xss));
    assert.ok(added.body.includes('&lt;img src=x onerror=alert(1)&gt;'));
    const t = /name="t" value="([^"]+)"/.exec(added.body)![1]!;
    const key = await a.post('/console/stations/key', { t });
    assert.equal(key.status, 200);
    assert.match(String(key.headers['content-disposition']), /attachment; filename="st-[0-9a-f]{8}\.key"/);
    const k = JSON.parse(key.body) as { stationId: string; centerId: string; key: string };
    assert.equal((await a.post('/console/stations/key', { t })).status, 410, 'offered once');
    const stations = await a.get('/console/stations');
    assert.ok(!stations.body.includes(xss) && stations.body.includes('&lt;img'));
    assert.ok(!stations.body.includes(k.key), 'the key is never shown');
    const station = { stationId: k.stationId, centerId: k.centerId, key: Buffer.from(k.key, 'hex') };
    const client = new HttpCenterClient(running.url, station, { attempts: 1, initialDelayMs: 10, maxDelayMs: 10, timeoutMs: 5000 });
    const lic1 = await client.requestLicense({ requestId: randomUUID(), scheme: 'a', contentId: 'APP-1', mediumId: 'ab01' });
    const confirm = await a.get(`/console/stations/revoke?id=${k.stationId}`);
    assert.match(confirm.body, /Revoke station/);
    assert.ok(confirm.body.includes('&lt;img'), 'the confirmation names the station, escaped');
    assert.equal((await a.post('/console/contents/price', { id: 'APP-1', price: '20' })).status, 200);
    const lic2 = await new HttpCenterClient(running.url, w.station, { attempts: 1, initialDelayMs: 10, maxDelayMs: 10, timeoutMs: 5000 }).requestLicense({ requestId: randomUUID(), scheme: 'a', contentId: 'APP-1', mediumId: 'ab02' });
    assert.equal((await a.post('/console/stations/revoke', { id: k.stationId })).status, 200);
    await assert.rejects(client.requestLicense({ requestId: randomUUID(), scheme: 'a', contentId: 'APP-1', mediumId: 'ab03' }), /revoked/);
    const rep = await ledgerReport(w.ledger);
    const amount = (id: string) => rep.billing.find((b) => b.licenseId === id)!.amount;
    assert.equal(amount(lic1.licenseId), 1500, 'issued before the change: keeps 15.00');
    assert.equal(amount(lic2.licenseId), 2000, 'issued after: 20.00');
    const audit = await a.get('/console/audit');
    assert.match(audit.body, /station\.revoke/);
    assert.ok(!audit.body.includes(xss) && audit.body.includes('&lt;img'), 'the audit log escapes the name too');
  });

  it('CSV export: a header and one row per license with its bill, equal to center report --json; filtered by medium ID', async () => {
    const client = new HttpCenterClient(running.url, w.station, { attempts: 1, initialDelayMs: 10, maxDelayMs: 10, timeoutMs: 5000 });
    for (let i = 0; i < 7; i++) await client.requestLicense({ requestId: randomUUID(), scheme: i % 2 ? 'a' : 'b', contentId: i % 3 ? 'APP-1' : 'APP-2', mediumId: `cc0${i}` });
    const a = new Agent(running.url);
    await a.signIn('alice', PW);
    const csv = await a.get('/console/licenses.csv');
    assert.equal(csv.status, 200);
    assert.match(String(csv.headers['content-type']), /^text\/csv/);
    const lines = csv.body.trimEnd().split('\n');
    assert.equal(lines[0], 'licenseId,requestId,stationId,contentId,mediumId,scheme,issuedAt,billId,amount,billedAt');
    const rep = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'center', 'report', '--json', '--db', w.ledger], { encoding: 'utf8', env: { ...process.env, MOCOPY_CONFIG: '/nonexistent' } }));
    const expected = rep.licenses.map((l: Record<string, string>) => {
      const b = rep.billing.find((x: Record<string, string>) => x.licenseId === l.id);
      return [l.id, l.requestId, l.stationId, l.contentId, l.mediumId, l.scheme, l.issuedAt, b.id, b.amount, b.billedAt].join(',');
    });
    assert.equal(expected.length, 7);
    assert.deepEqual(lines.slice(1), expected);
    const one = await a.get('/console/licenses.csv?medium=cc03');
    assert.deepEqual(one.body.trimEnd().split('\n').slice(1), expected.filter((l: string) => l.includes(',cc03,')));
    const pageHtml = await a.get('/console/licenses?medium=CC:03');
    assert.equal((pageHtml.body.match(/<td class="mono">cc0/g) ?? []).length, 1, 'the page filtered by medium ID (case and colons ignored)');
    assert.equal((await a.get('/console/licenses?medium=zz')).status, 400);
  });

  it('live licenses: the event stream sends a new license within 2 s, only to pages whose filter it passes', async () => {
    const a = new Agent(running.url);
    await a.signIn('alice', PW);
    const got: Record<string, string[]> = { all: [], other: [] };
    const streams = Object.keys(got).map((k) => new Promise<() => void>((resolve) => {
      const req = httpRequest(`${running.url}/console/events${k === 'other' ? '?medium=ffff' : ''}`, { headers: { cookie: a.cookieHeader } }, (res) => {
        assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
        res.setEncoding('utf8');
        res.on('data', (d: string) => got[k]!.push(d));
        resolve(() => req.destroy());
      });
      req.on('error', () => undefined);
      req.end();
    }));
    const stops = await Promise.all(streams);
    await new Promise((r) => setTimeout(r, 700));
    const t0 = Date.now();
    const lic = await new HttpCenterClient(running.url, w.station, { attempts: 1, initialDelayMs: 10, maxDelayMs: 10, timeoutMs: 5000 }).requestLicense({ requestId: randomUUID(), scheme: 'a', contentId: 'APP-1', mediumId: 'dd01' });
    while (!got.all!.join('').includes(lic.licenseId) && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 50));
    const ms = Date.now() - t0;
    assert.ok(got.all!.join('').includes(lic.licenseId), 'arrived');
    assert.ok(ms < 2000, `within 2 s (${ms} ms)`);
    assert.ok(!got.other!.join('').includes(lic.licenseId), 'not to a page filtered on another medium');
    for (const s of stops) s();
  });

  it('two center instances on one ledger: a session made on one works on the other, and both show the same licenses', async () => {
    const second = await serveCenter({ db: w.ledger, port: 0, log: () => {}, console: (c) => createConsole(c, opts) });
    try {
      const a = new Agent(running.url);
      await a.signIn('alice', PW);
      await new HttpCenterClient(second.url, w.station, { attempts: 1, initialDelayMs: 10, maxDelayMs: 10, timeoutMs: 5000 }).requestLicense({ requestId: randomUUID(), scheme: 'a', contentId: 'APP-1', mediumId: 'ee01' });
      const b = new Agent(second.url);
      b.cookies = new Map(a.cookies);
      const p1 = await a.get('/console/licenses');
      const p2 = await b.get('/console/licenses');
      assert.equal(p2.status, 200);
      const rows = (h: string) => h.slice(h.indexOf('<tbody'), h.indexOf('</tbody>'));
      assert.match(rows(p1.body), /ee01/);
      assert.equal(rows(p1.body), rows(p2.body));
    } finally {
      await second.close();
    }
  });

  it('mocopy center operator add|list|passwd|remove: generated password printed once, stdin password, hashes only, audited', async () => {
    const add = cli(['center', 'operator', 'add', 'olga', '--db', w.ledger, '--role', 'viewer']);
    assert.equal(add.code, 0, add.stderr);
    const pw = /password \(shown once[^:]*\): (\S+)/.exec(add.stdout)![1]!;
    assert.equal((await new Agent(running.url).signIn('olga', pw)).status, 303);
    assert.equal(cli(['center', 'operator', 'add', 'olga', '--db', w.ledger, '--role', 'viewer']).code, 2, 'name taken');
    assert.equal(cli(['center', 'operator', 'add', 'x', '--db', w.ledger, '--role', 'root']).code, 2, 'bad role');
    assert.equal(cli(['center', 'operator', 'add', 'pete', '--db', w.ledger, '--role', 'admin', '--password-stdin'], 'short\n').code, 2, 'too short');
    const p = cli(['center', 'operator', 'add', 'pete', '--db', w.ledger, '--role', 'admin', '--password-stdin'], 'a long enough password\n');
    assert.equal(p.code, 0, p.stderr);
    assert.ok(!p.stdout.includes('a long enough password'));
    assert.equal((await new Agent(running.url).signIn('pete', 'a long enough password')).status, 303);
    const list = JSON.parse(cli(['center', 'operator', 'list', '--db', w.ledger, '--json']).stdout) as { operators: Array<{ name: string; role: string }> };
    assert.deepEqual(list.operators.map((o) => [o.name, o.role]), [['alice', 'admin'], ['olga', 'viewer'], ['pete', 'admin'], ['victor', 'viewer']]);
    assert.ok(!JSON.stringify(list).includes('scrypt'));
    const signedIn = new Agent(running.url);
    await signedIn.signIn('pete', 'a long enough password');
    assert.equal(cli(['center', 'operator', 'passwd', 'pete', '--db', w.ledger, '--password-stdin'], 'another long password\n').code, 0);
    assert.equal((await signedIn.get('/console/')).status, 303, 'a new password ends the sessions');
    assert.equal((await new Agent(running.url).signIn('pete', 'another long password')).status, 303);
    assert.equal(cli(['center', 'operator', 'remove', 'pete', '--db', w.ledger]).code, 0);
    assert.equal(cli(['center', 'operator', 'remove', 'pete', '--db', w.ledger]).code, 2);
    assert.equal((await new Agent(running.url).signIn('pete', 'another long password')).status, 401);
    const l = await openLedger(w.ledger, { create: false });
    try {
      const stored = (await l.operator('olga'))!.passwordHash;
      assert.match(stored, /^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
      assert.ok(!stored.includes(pw));
      const actions = (await l.auditLog({}, undefined, 20)).map((r) => `${r.action} ${r.target} ${r.operator.startsWith('cli:') ? 'cli' : r.operator}`);
      assert.deepEqual(actions.slice(0, 5), ['operator.remove pete cli', 'operator.passwd pete cli', 'operator.add pete cli', 'operator.add olga cli', 'operator.add victor test']);
    } finally {
      await l.close();
    }
  });
});

describe('operators\' console over HTTPS', function () {
  this.timeout(60_000);
  it('the session cookie is Secure under TLS', async function () {
    const w = await makeWorld();
    try {
      const cert = join(w.dir, 'cert.pem');
      const key = join(w.dir, 'key.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
      await addOperator(w.ledger, 'alice', 'admin', PW);
      const running = await serveCenter({ db: w.ledger, port: 0, log: () => {}, tls: { cert, key }, console: createConsole });
      try {
        assert.match(running.url, /^https:/);
        const a = new Agent(running.url);
        const ok = await a.signIn('alice', PW);
        assert.equal(ok.status, 303);
        assert.match(cookieOf(ok, 'mocopy_console')!, /; Secure/);
        assert.equal((await a.get('/console/')).status, 200);
      } finally {
        await running.close();
      }
    } finally {
      w.cleanup();
    }
  });
});
