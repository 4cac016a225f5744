import { strict as assert } from 'node:assert';
import { randomBytes, randomUUID } from 'node:crypto';
import { LicenseCenter } from '../lib/center/center.js';
import { openLedger, type Ledger } from '../lib/center/ledger.js';
import { makeWorld, type World } from './helpers/fixtures.js';
import { LEDGER_BACKENDS, requirePostgres, worldLedger } from './helpers/postgres.js';

const actor = { operator: 'alice', address: '127.0.0.1' };

for (const backend of LEDGER_BACKENDS) describe(`console ledger (schema 3) [${backend}]`, function () {
  this.timeout(60_000);
  let w: World;
  let l: Ledger;
  before(function () { if (backend === 'postgres') requirePostgres(this); });
  beforeEach(async () => {
    w = await makeWorld(await worldLedger(backend));
    l = await openLedger(w.ledger, { create: false });
  });
  afterEach(async () => {
    await l.close();
    w.cleanup();
  });

  it('operators: add (name unique), list without hashes, password change and removal end sessions; each change audited', async () => {
    const now = new Date().toISOString();
    assert.equal(await l.addOperator({ name: 'bob', role: 'viewer', passwordHash: 'h1', createdAt: now, passwordChangedAt: now }, actor), true);
    assert.equal(await l.addOperator({ name: 'bob', role: 'admin', passwordHash: 'h2', createdAt: now, passwordChangedAt: now }, actor), false);
    assert.equal((await l.operator('bob'))!.passwordHash, 'h1');
    assert.deepEqual((await l.operators()).map((o) => [o.name, o.role, 'passwordHash' in o]), [['bob', 'viewer', false]]);
    await l.createSession({ tokenHash: 'th1', operator: 'bob', nowMs: 1_000_000, address: '::1' });
    assert.equal((await l.useSession('th1', 1_000_500, 60_000, 3_600_000))!.role, 'viewer');
    assert.equal(await l.setOperatorPassword('bob', 'h3', actor), true);
    assert.equal(await l.useSession('th1', 1_000_600, 60_000, 3_600_000), undefined, 'a password change ends the sessions');
    await l.createSession({ tokenHash: 'th2', operator: 'bob', nowMs: 1_000_000, address: '::1' });
    assert.equal(await l.removeOperator('bob', actor), true);
    assert.equal(await l.useSession('th2', 1_000_100, 60_000, 3_600_000), undefined);
    assert.equal(await l.removeOperator('bob', actor), false);
    const audit = await l.auditLog({}, undefined, 10);
    assert.deepEqual(audit.map((a) => a.action), ['operator.remove', 'operator.passwd', 'operator.add']);
    assert.ok(audit.every((a) => !`${a.before}${a.after}`.includes('h3') && !`${a.before}${a.after}`.includes('h1')), 'no password hash in the audit log');
    assert.deepEqual((await l.auditLog({ action: 'operator.add' }, undefined, 10)).map((a) => a.target), ['bob']);
  });

  it('sessions expire when idle and at their absolute age; failed sign-ins count per name', async () => {
    const now = new Date().toISOString();
    await l.addOperator({ name: 'carol', role: 'admin', passwordHash: 'h', createdAt: now, passwordChangedAt: now }, actor);
    await l.createSession({ tokenHash: 'a', operator: 'carol', nowMs: 0, address: 'x' });
    assert.ok(await l.useSession('a', 50_000, 60_000, 200_000));
    assert.ok(await l.useSession('a', 100_000, 60_000, 200_000), 'use renews the idle time');
    assert.equal(await l.useSession('a', 170_000, 60_000, 200_000), undefined, 'idle 70 s > 60 s');
    await l.createSession({ tokenHash: 'b', operator: 'carol', nowMs: 0, address: 'x' });
    for (let t = 50_000; t < 200_000; t += 50_000) assert.ok(await l.useSession('b', t, 60_000, 200_000));
    assert.equal(await l.useSession('b', 200_001, 60_000, 200_000), undefined, 'absolute age');
    assert.equal(await l.recordSignInFailure('nobody', 5), 1);
    assert.equal(await l.recordSignInFailure('nobody', 7), 2);
    assert.deepEqual(await l.signInFailures('nobody'), { failures: 2, lastMs: 7 });
    await l.clearSignInFailures('nobody');
    assert.equal(await l.signInFailures('nobody'), undefined);
    // Names tried once and never again are forgotten a day later, when the next failure is recorded.
    for (let i = 0; i < 50; i++) await l.recordSignInFailure(`guess${i}`, 1_000_000);
    assert.deepEqual(await l.signInFailures('guess7'), { failures: 1, lastMs: 1_000_000 });
    const later = 1_000_000 + 24 * 3600_000 + 120_000;
    assert.equal(await l.recordSignInFailure('fresh', later), 1);
    for (const n of ['guess0', 'guess7', 'guess49']) assert.equal(await l.signInFailures(n), undefined, n);
    assert.deepEqual(await l.signInFailures('fresh'), { failures: 1, lastMs: later });
  });

  it('stations and contents: audited changes; a price change leaves issued bills at their amount; a key download is taken once', async () => {
    const key = randomBytes(32);
    await l.addStationAudited('st-console1', 'Shop <b>', key, actor, { tokenHash: 'dl', sessionHash: 'sess', expiresMs: Date.now() + 60_000 });
    assert.equal(await l.takeKeyDownload('dl', 'other-session', Date.now()), undefined, 'another session cannot take it');
    const st = await l.takeKeyDownload('dl', 'sess', Date.now());
    assert.deepEqual(st!.userKey, key);
    assert.equal(await l.takeKeyDownload('dl', 'sess', Date.now()), undefined, 'offered once');

    const c = new LicenseCenter(l);
    const first = await c.issue(w.station.stationId, { requestId: randomUUID(), scheme: 'a', contentId: 'APP-1', mediumId: 'aa01' });
    assert.equal(await l.setContentPrice('APP-1', 2500, actor), true);
    const second = await c.issue(w.station.stationId, { requestId: randomUUID(), scheme: 'a', contentId: 'APP-1', mediumId: 'aa02' });
    const rows = await l.licensePage({}, { order: 'asc', limit: 10 });
    assert.deepEqual(rows.map((r) => [r.id, r.amount]), [[first.licenseId, 1500], [second.licenseId, 2500]]);
    assert.equal(await l.setContentPrice('NOPE', 1, actor), false);
    assert.equal(await l.addContentAudited({ id: 'APP-9', name: 'Nine', schemes: ['a'], price: 10 }, actor), true);
    assert.equal(await l.addContentAudited({ id: 'APP-9', name: 'Nine again', schemes: ['a'], price: 10 }, actor), false);
    assert.equal(await l.revokeStationAudited('st-console1', actor), true);
    assert.equal(await l.revokeStationAudited('st-console1', actor), false, 'already revoked: no second audit row');
    const audit = await l.auditLog({}, undefined, 50);
    assert.deepEqual(audit.map((a) => [a.action, a.target]), [['station.revoke', 'st-console1'], ['content.add', 'APP-9'], ['content.price', 'APP-1'], ['station.add', 'st-console1']]);
    assert.deepEqual(JSON.parse(audit[2]!.before!), { price: 1500 });
    assert.deepEqual(JSON.parse(audit[2]!.after!), { price: 2500 });
    assert.ok(!JSON.stringify(audit).includes(key.toString('hex')), 'no station key in the audit log');
    assert.deepEqual((await l.auditLog({}, audit[1]!.id, 50)).map((a) => a.action), ['content.price', 'station.add'], 'keyset: older than an id');
  });

  it('license pages: filters, keyset in both orders, totals, per day, revenue by content and station, station activity', async () => {
    const c = new LicenseCenter(l);
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await c.issue(w.station.stationId, { requestId: randomUUID(), scheme: 'a', contentId: i % 2 ? 'APP-2' : 'APP-1', mediumId: `0${i}` })).licenseId);
    const asc = await l.licensePage({}, { order: 'asc', limit: 3 });
    const asc2 = await l.licensePage({}, { order: 'asc', limit: 10, after: { issuedAt: asc[2]!.issuedAt, id: asc[2]!.id } });
    assert.deepEqual([...asc, ...asc2].map((r) => r.id), (await l.report()).licenses.map((r) => r.id));
    const desc = await l.licensePage({}, { order: 'desc', limit: 4 });
    const desc2 = await l.licensePage({}, { order: 'desc', limit: 4, after: { issuedAt: desc[3]!.issuedAt, id: desc[3]!.id } });
    assert.deepEqual([...desc, ...desc2].map((r) => r.id), [...asc, ...asc2].map((r) => r.id).reverse());
    assert.deepEqual((await l.licensePage({ mediumId: '03' }, { order: 'desc', limit: 10 })).map((r) => r.id), [ids[3]]);
    assert.equal((await l.licensePage({ contentId: 'APP-2' }, { order: 'desc', limit: 10 })).length, 3);
    assert.equal((await l.licensePage({ stationId: 'st-none' }, { order: 'desc', limit: 10 })).length, 0);
    assert.equal((await l.licensePage({ from: '2999-01-01' }, { order: 'desc', limit: 10 })).length, 0);
    assert.equal((await l.licensePage({ from: '2000-01-01', to: '2999-01-01' }, { order: 'desc', limit: 10 })).length, 7);
    assert.deepEqual(await l.licenseTotals('2000-01-01'), { licenses: 7, revenue: 7 * 1500 });
    const days = await l.licensesPerDay('2000-01-01');
    assert.deepEqual(days, [{ day: new Date().toISOString().slice(0, 10), licenses: 7, revenue: 10500 }]);
    assert.deepEqual(await l.revenueBy('content', '2000-01-01', 5), [{ id: 'APP-1', licenses: 4, revenue: 6000 }, { id: 'APP-2', licenses: 3, revenue: 4500 }]);
    assert.deepEqual(await l.revenueBy('station', '2000-01-01', 5), [{ id: w.station.stationId, licenses: 7, revenue: 10500 }]);
    const act = await l.stationActivity();
    assert.equal(act.length, 1);
    assert.equal(act[0]!.licenses, 7);
    assert.equal(act[0]!.lastLicenseAt, desc[0]!.issuedAt);
  });

  it('a change and its audit row commit together: when the audit row cannot be written, the change is rolled back', async () => {
    // A trigger that refuses audit rows, put in place behind the ledger's back.
    if (backend === 'sqlite') {
      const Database = (await import('better-sqlite3')).default;
      const db = new Database(w.ledger);
      db.exec("CREATE TRIGGER no_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit refused'); END");
      db.close();
    } else {
      const pg = (await import('pg')).default;
      const cl = new pg.Client({ connectionString: w.ledger });
      await cl.connect();
      await cl.query("CREATE FUNCTION no_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql");
      await cl.query('CREATE TRIGGER no_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION no_audit()');
      await cl.end();
    }
    await assert.rejects(l.setContentPrice('APP-1', 9999, actor), /audit refused/);
    assert.equal((await l.content('APP-1'))!.price, 1500);
    await assert.rejects(l.revokeStationAudited(w.station.stationId, actor), /audit refused/);
    assert.equal((await l.station(w.station.stationId))!.status, 'active');
    await assert.rejects(l.addStationAudited('st-x', 'x', randomBytes(32), actor, { tokenHash: 't', sessionHash: 's', expiresMs: Date.now() + 1000 }), /audit refused/);
    assert.equal(await l.station('st-x'), undefined);
    const now = new Date().toISOString();
    await assert.rejects(l.addOperator({ name: 'dave', role: 'admin', passwordHash: 'h', createdAt: now, passwordChangedAt: now }, actor), /audit refused/);
    assert.equal(await l.operator('dave'), undefined);
  });
});
