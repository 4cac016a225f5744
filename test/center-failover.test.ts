/**
 * Failover: a PostgreSQL primary with a synchronous standby (streaming replication, synchronous_commit = on),
 * two center instances whose URL lists both servers with target_session_attrs=read-write, stations copying
 * through both. The primary is killed with SIGKILL mid-load and the standby promoted; the instances find it
 * on their own. Every license acknowledged to a station must be in the promoted ledger, none billed twice.
 */
import { strict as assert } from 'node:assert';
import { randomBytes, randomUUID } from 'node:crypto';
import { HttpCenterClient } from '../lib/center/http-client.js';
import type { LicenseRequest, StationKey } from '../lib/domain/index.js';
import { ledgerReport, makeWorld, withCenter, type World } from './helpers/fixtures.js';
import { PgServer, requirePostgres } from './helpers/postgres.js';
import { billingFigures, startInstance, stopInstance } from './helpers/center-instances.js';

const req = (over: Partial<LicenseRequest> = {}): LicenseRequest => ({ requestId: randomUUID(), scheme: 'a', contentId: 'APP-1', mediumId: randomBytes(8).toString('hex'), ...over });

describe('license center failover: the primary killed, the synchronous standby promoted', function () {
  this.timeout(300_000);
  let primary: PgServer | undefined;
  let standby: PgServer | undefined;
  let w: World | undefined;
  before(function () { requirePostgres(this); });
  after(() => {
    w?.cleanup();
    primary?.stopNow();
    standby?.stopNow();
  });

  it('every acknowledged license is in the promoted ledger; none is billed twice', async () => {
    primary = await PgServer.start('primary');
    await primary.sql('CREATE DATABASE ledger');
    standby = await PgServer.standbyOf(primary, 'standby1');
    await primary.sql("ALTER SYSTEM SET synchronous_standby_names = 'standby1'");
    await primary.sql('SELECT pg_reload_conf()');
    for (let i = 0; ; i++) {
      const r = await primary.sql("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'");
      if (r.rows[0]?.sync_state === 'sync') break;
      if (i > 200) throw new Error('the standby never became synchronous');
      await new Promise((res) => setTimeout(res, 50));
    }
    const url = `postgres://postgres@127.0.0.1:${primary.port},127.0.0.1:${standby.port}/ledger?target_session_attrs=read-write&connect_timeout=2`;
    const { Ledger } = await import('../lib/center/ledger.js');
    await Ledger.migrate(url);
    w = await makeWorld({ ledger: url });
    const stations = await withCenter(url, async (c) => Promise.all(Array.from({ length: 8 }, (_, i) => c.addStation(`f${i}`))));
    const instances = [await startInstance(url), await startInstance(url)];
    const acked: Array<{ id: string; requestId: string; at: number }> = [];
    let retriedAcross = 0;
    try {
      // Stations retry long enough to ride out a failover (the promotion here takes about a second).
      const patient = { attempts: 80, initialDelayMs: 50, maxDelayMs: 500, timeoutMs: 5000 };
      const work = stations.map(async (s: StationKey, si) => {
        const clients = instances.map((i) => new HttpCenterClient(i.url, s, patient));
        for (let n = 0; n < 60; n++) {
          const r = req({ scheme: n % 2 ? 'a' : 'b' });
          const l = await clients[(si + n) % 2]!.requestLicense(r);
          acked.push({ id: l.licenseId, requestId: r.requestId, at: Date.now() });
        }
      });
      for (let waited = 0; acked.length < 120 && waited < 60_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
      primary.kill();
      const killedAt = acked.length;
      const tKill = Date.now();
      standby.promote();
      const tPromoted = Date.now();
      await Promise.all(work);
      const afterPromotion = acked.filter((a) => a.at > tPromoted).length;
      retriedAcross = acked.filter((a) => a.at > tKill && a.at <= tPromoted).length;
      // The promoted server is the only one left: read the ledger there.
      const rep = await ledgerReport(url);
      const f = billingFigures(rep);
      const ids = new Set(rep.licenses.map((l) => l.id));
      const missing = acked.filter((a) => !ids.has(a.id)).length;
      console.log(`      primary killed after ${killedAt} acknowledged; promotion took ${tPromoted - tKill} ms; ${afterPromotion} acknowledged after it (${retriedAcross} during it). ` +
        `Acknowledged ${acked.length}, present in the promoted ledger ${acked.length - missing}, double-billed ${f.doubleBilled}, licenses ${f.licenses}, bills ${f.bills}`);
      assert.ok(killedAt > 0 && afterPromotion > 0, 'the kill landed mid-load and work went on after the promotion');
      assert.equal(missing, 0, 'every acknowledged license is in the promoted ledger');
      assert.equal(f.licenses, acked.length, 'one license per request, nothing extra');
      assert.equal(f.doubleBilled + f.unbilled + f.orphanBills, 0);
    } finally {
      for (const i of instances) await stopInstance(i);
    }
  });
});
