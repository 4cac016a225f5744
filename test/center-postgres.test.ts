/**
 * The center on PostgreSQL beyond the shared suites: several instances on one ledger (idempotency and
 * billing decided by the database, revocation seen by every instance at once, an instance killed mid-load),
 * schema migrations, and moving a SQLite ledger to PostgreSQL with export/import.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { HttpCenterClient } from '../lib/center/http-client.js';
import { LocalCenterClient } from '../lib/center/local-client.js';
import { Ledger, LATEST_SCHEMA, SqliteLedger } from '../lib/center/ledger.js';
import type { LicenseRequest, StationKey } from '../lib/domain/index.js';
import type { MocopyError } from '../lib/errors.js';
import { ledgerReport, makeWorld, withCenter, type World } from './helpers/fixtures.js';
import { requirePostgres, sharedPostgres, type PgServer } from './helpers/postgres.js';
import { billingFigures, startInstance, stopInstance } from './helpers/center-instances.js';

const req = (over: Partial<LicenseRequest> = {}): LicenseRequest => ({ requestId: randomUUID(), scheme: 'a', contentId: 'APP-1', mediumId: randomBytes(8).toString('hex'), ...over });
const patient = { attempts: 60, initialDelayMs: 20, maxDelayMs: 250, timeoutMs: 5000 };

describe('license center on PostgreSQL: several instances, one ledger', function () {
  this.timeout(240_000);
  let pgs: PgServer;
  let w: World;
  before(async function () {
    requirePostgres(this);
    pgs = await sharedPostgres();
  });
  beforeEach(async () => {
    w = await makeWorld({ ledger: await pgs.freshLedger() });
  });
  afterEach(() => w?.cleanup());

  it('2 instances × 8 stations × 1,000 requests, 10% sent again to the other instance at once: licenses = bills = distinct requests', async () => {
    const stations = await withCenter(w.ledger, async (c) => Promise.all(Array.from({ length: 8 }, (_, i) => c.addStation(`x${i}`))));
    const instances = [await startInstance(w.ledger), await startInstance(w.ledger)];
    const t0 = Date.now();
    try {
      const distinct = new Set<string>();
      let duplicates = 0;
      let sameAnswer = 0;
      await Promise.all(stations.map(async (s, si) => {
        const clients = instances.map((i) => new HttpCenterClient(i.url, s, patient));
        // Each station keeps 4 requests in flight, as a station with 4 MO drives would.
        let next = 0;
        await Promise.all(Array.from({ length: 4 }, async () => {
          for (let n = next++; n < 1000; n = next++) {
            const r = req({ scheme: n % 2 ? 'a' : 'b' });
            distinct.add(r.requestId);
            const here = (si + n) % 2;
            if (n % 10 === 0) {
              // The same request to both instances at the same moment: the database decides, once.
              duplicates++;
              const [x, y] = await Promise.all([clients[here]!.requestLicense(r), clients[1 - here]!.requestLicense(r)]);
              if (x.licenseId === y.licenseId) sameAnswer++;
            } else {
              await clients[here]!.requestLicense(r);
            }
          }
        }));
      }));
      const s = (Date.now() - t0) / 1000;
      const f = billingFigures(await ledgerReport(w.ledger));
      console.log(`      ${distinct.size} distinct requests (${duplicates} sent to both instances at once, ${sameAnswer} answered with one license) in ${s.toFixed(1)} s ` +
        `(${(distinct.size / s).toFixed(0)}/s): licenses ${f.licenses}, bills ${f.bills}, double-billed ${f.doubleBilled}, unbilled ${f.unbilled}`);
      assert.equal(distinct.size, 8000);
      assert.equal(sameAnswer, duplicates, 'both instances answered every duplicate with the same license');
      assert.equal(f.licenses, distinct.size);
      assert.equal(f.bills, distinct.size);
      assert.equal(f.doubleBilled + f.unbilled + f.orphanBills, 0);
    } finally {
      for (const i of instances) await stopInstance(i);
    }
  });

  it('a station revoked through one instance\'s ledger is refused by every instance at its next request', async () => {
    const instances = [await startInstance(w.ledger), await startInstance(w.ledger)];
    try {
      const clients = instances.map((i) => new HttpCenterClient(i.url, w.station, patient));
      for (const c of clients) await c.requestLicense(req());
      await withCenter(w.ledger, (c) => c.revokeStation(w.station.stationId));
      for (const c of clients) await assert.rejects(c.requestLicense(req()), (e: MocopyError) => e.code === 'E_STATION_REVOKED');
      assert.equal((await ledgerReport(w.ledger)).billing.length, 2);
    } finally {
      for (const i of instances) await stopInstance(i);
    }
  });

  it('an instance killed with SIGKILL mid-load: every acknowledged license is in the ledger, none billed twice', async () => {
    const stations = await withCenter(w.ledger, async (c) => Promise.all(Array.from({ length: 8 }, (_, i) => c.addStation(`k${i}`))));
    let victim = await startInstance(w.ledger);
    const other = await startInstance(w.ledger);
    const port = Number(new URL(victim.url).port);
    const acked: Array<{ id: string; requestId: string }> = [];
    try {
      const work = stations.map(async (s: StationKey, si) => {
        const clients = [new HttpCenterClient(victim.url, s, patient), new HttpCenterClient(other.url, s, patient)];
        for (let n = 0; n < 80; n++) {
          const r = req({ scheme: n % 2 ? 'a' : 'b' });
          const l = await clients[(si + n) % 2]!.requestLicense(r);
          acked.push({ id: l.licenseId, requestId: r.requestId });
        }
      });
      for (let waited = 0; acked.length < 150 && waited < 60_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
      await stopInstance(victim, 'SIGKILL');
      const atKill = acked.length;
      victim = await startInstance(w.ledger, port);
      await Promise.all(work);
      const rep = await ledgerReport(w.ledger);
      const f = billingFigures(rep);
      const ids = new Set(rep.licenses.map((l) => l.id));
      const missing = acked.filter((a) => !ids.has(a.id)).length;
      console.log(`      killed one of 2 instances after ${atKill} of ${acked.length} acknowledged: acknowledged present ${acked.length - missing}/${acked.length}, double-billed ${f.doubleBilled}, licenses ${f.licenses}, bills ${f.bills}`);
      assert.ok(atKill > 0 && atKill < acked.length, 'the kill landed mid-load');
      assert.equal(missing, 0, 'every acknowledged license is in the ledger');
      assert.equal(f.licenses, acked.length, 'one license per request');
      assert.equal(f.doubleBilled + f.unbilled + f.orphanBills, 0);
    } finally {
      await stopInstance(victim);
      await stopInstance(other);
    }
  });
});

describe('ledger schema migrations and export/import', function () {
  this.timeout(120_000);
  let pgs: PgServer;
  before(async function () {
    requirePostgres(this);
    pgs = await sharedPostgres();
  });

  const mocopy = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('a new database is refused until migrated; migrate is idempotent and safe when run twice at once; a newer schema is refused', async () => {
    const db = `m_${Date.now().toString(36)}`;
    await pgs.sql(`CREATE DATABASE ${db}`);
    const url = pgs.url(db);
    const early = mocopy(['center', 'report', '--db', url]);
    assert.equal(early.code, 2, early.stderr);
    assert.match(early.stderr, /holds no mocopy ledger[\s\S]*mocopy center migrate/);
    const [a, b] = await Promise.all([Ledger.migrate(url), Ledger.migrate(url)]);
    assert.deepEqual([a, b].map((x) => x.to), [LATEST_SCHEMA, LATEST_SCHEMA]);
    assert.deepEqual([a.from, b.from].sort(), [0, LATEST_SCHEMA], 'one applied the steps, the other found them applied');
    const again = mocopy(['center', 'migrate', '--db', url, '--json']);
    assert.deepEqual(JSON.parse(again.stdout), { from: LATEST_SCHEMA, to: LATEST_SCHEMA });
    await pgs.sql("UPDATE meta SET value = convert_to('99', 'UTF8') WHERE key = 'schema_version'", db);
    const serve = mocopy(['center', 'serve', '--db', url, '--listen', '127.0.0.1:0']);
    assert.equal(serve.code, 2, serve.stderr);
    assert.match(serve.stderr, /schema 99, newer than this mocopy knows/);
    assert.doesNotMatch(serve.stderr, /password/i);
  });

  it('a SQLite ledger written before versioned migrations is brought to the latest schema when opened', async () => {
    const w = await makeWorld();
    try {
      const raw = SqliteLedger.open(w.ledger);
      raw.db.exec("DROP INDEX licenses_issued; DROP INDEX licenses_medium; UPDATE meta SET value = CAST('1' AS BLOB) WHERE key = 'schema_version'");
      await raw.close();
      const l = SqliteLedger.open(w.ledger);
      assert.deepEqual(l.migrated, { from: 1, to: LATEST_SCHEMA });
      assert.equal(await l.schemaVersion(), LATEST_SCHEMA);
      await l.close();
    } finally {
      w.cleanup();
    }
  });

  it('export from SQLite, import into PostgreSQL: every row arrives, old licenses answer the same, station keys still work', async () => {
    const w = await makeWorld();
    try {
      // A ledger with history: licenses of both schemes, a revoked station, a changed price.
      const issued: Array<{ r: LicenseRequest; l: unknown }> = [];
      await withCenter(w.ledger, async (c) => {
        for (let i = 0; i < 40; i++) issued.push({ r: req({ scheme: i % 2 ? 'a' : 'b' }), l: undefined as unknown });
        for (const x of issued) x.l = await c.issue(w.station.stationId, x.r);
        await c.revokeStation((await c.addStation('closed shop')).stationId);
        await c.registerContent({ contentId: 'APP-2', name: 'Program APP-2', schemes: ['a', 'b'], price: 2500 });
        // An operator and what the console audited: they move with the ledger.
        await c.ledger.addOperator({ name: 'alice', role: 'admin', passwordHash: 'scrypt$test$hash', createdAt: new Date().toISOString(), passwordChangedAt: new Date().toISOString() }, { operator: 'cli:test', address: 'local' });
        await c.ledger.setContentPrice('APP-1', 1700, { operator: 'alice', address: '127.0.0.1' });
      });
      const file = join(w.dir, 'ledger.export.json');
      const ex = mocopy(['center', 'export', '--db', w.ledger, '--out', file, '--json']);
      assert.equal(ex.code, 0, ex.stderr);
      assert.deepEqual(JSON.parse(ex.stdout), { file, stations: 2, contents: 2, licenses: 40, billing: 40, operators: 1, auditLog: 2 });
      const { statSync } = await import('node:fs');
      assert.equal(statSync(file).mode & 0o077, 0, 'the export holds secrets: mode 0600');
      assert.equal(mocopy(['center', 'export', '--db', w.ledger, '--out', file]).code, 2, 'never written over an existing file');

      const db = `imp_${Date.now().toString(36)}`;
      await pgs.sql(`CREATE DATABASE ${db}`);
      const url = pgs.url(db);
      const im = mocopy(['center', 'import', '--db', url, '--in', file, '--json'], {});
      assert.equal(im.code, 0, im.stderr);
      assert.deepEqual(JSON.parse(im.stdout), { stations: 2, contents: 2, licenses: 40, billing: 40, operators: 1, auditLog: 2 });
      assert.deepEqual(await ledgerReport(url), await ledgerReport(w.ledger), 'the same report from both backends');
      assert.equal(mocopy(['center', 'import', '--db', url, '--in', file]).code, 2, 'import only into an empty ledger');

      // The moved center answers an old request with the same license, and bills the next one as the next bill.
      await withCenter(url, async (c) => {
        assert.deepEqual(await c.issue(w.station.stationId, issued[7]!.r), issued[7]!.l);
      });
      // The station authenticates with the key file it always had, and its next license is the next bill.
      const station = new LocalCenterClient(url, w.station);
      try {
        await station.requestLicense(req({ contentId: 'APP-2' }));
      } finally {
        await station.close();
      }
      const rep = await ledgerReport(url);
      assert.equal(rep.billing.length, 41);
      assert.deepEqual(rep.billing.at(-1)!.id, 41);
      assert.equal(rep.billing.at(-1)!.amount, 2500);
    } finally {
      w.cleanup();
    }
  });
});
