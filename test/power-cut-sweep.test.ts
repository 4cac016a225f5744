/**
 * Issue 11 item 2: every power-cut point of a licensed copy, and the license center killed at every
 * phase of one license request.
 *
 * Part 1 — for each scheme, on a disc that already holds one committed copy (so "committed copies from
 * before are byte-identical" means something), the WRITE commands W of a full licensed copy are counted;
 * then for every k in 1..W a fresh disc gets the copy with the power cut after write k, is inspected
 * (its directory must be the old one or the new one, never torn or invalid; the older copy and the label
 * byte-identical; a new directory must point at data that is durable), and the same copy is run again
 * with the same ledger — after a power-on of the same drive (odd k) or in a new drive on the same image
 * (even k). For a sample of k the resumed copy is cut again after write j, then a third run completes.
 * Every k must end with a disc that opens with the publisher's bytes, `verify --deep` ok, and exactly
 * one license and one billing row for (station, medium, content, scheme).
 *
 * The target drive's transfer limit is 4 KiB, so a 70 KB copy is a few dozen WRITEs (the license slot,
 * the data in 4 KiB pieces, the 64 KiB directory in 16 FUA pieces) and cuts land inside the data and
 * inside the directory write, not only between phases.
 *
 * Part 2 — the HTTP center (`test/center-fixtures/serve.ts`, a child process) is SIGKILLed at each phase
 * of one license request, with a loopback proxy between station and center that holds the request or
 * the response at the right moment; then it is restarted and the station's client retries (same request
 * ID): exactly one license and one bill, and the station gets the license and completes the copy.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { HttpCenterClient } from '../lib/center/http-client.js';
import { Ledger } from '../lib/center/ledger.js';
import { LocalCenterClient } from '../lib/center/local-client.js';
import type { Scheme } from '../lib/domain/index.js';
import { openDevice } from '../lib/drives/open.js';
import type { DriveOptions, EmulatedDrive } from '../lib/emulator/index.js';
import { MocopyError } from '../lib/errors.js';
import type { Directory, DirectoryEntry } from '../lib/formats/disc-layout.js';
import { LABEL_BYTES, SLOT_BYTES, slotOffset } from '../lib/formats/disc-layout.js';
import { openCopy } from '../lib/protocol/open-copy.js';
import { copyLicensed, type CopyResult } from '../lib/protocol/station.js';
import { verifyDisc } from '../lib/protocol/verify-disc.js';
import type { ScsiDevice } from '../lib/scsi/device.js';
import { TargetDisc } from '../lib/target/disc.js';
import { Collect, makeWorld, type World } from './helpers/fixtures.js';

const OLD = 'OLD-1';
const NEW = 'NEW-1';
/** 4 KiB per command on the target: a 70 KB copy is a few dozen WRITEs. */
const TARGET: DriveOptions = { maxTransferBytes: 4096 };
const DISC_BYTES = 2 << 20;


const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** The directory entry without what differs from run to run (commit time; scheme B's ciphertext hash). */
const shape = (e: DirectoryEntry) => ({ contentId: e.contentId, name: e.name, scheme: e.scheme, slot: e.slot, offset: e.offset, encryptedSize: e.encryptedSize, plainSize: e.plainSize });
const errName = (e: unknown) => (e instanceof MocopyError ? `${e.constructor.name}/${e.code}` : `UNTYPED ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);

/** What a disc held before the interrupted copy: blank, or with one (older) committed copy. */
interface Before { directory: Directory; label: Buffer; labelOurs: boolean; old?: { entry: DirectoryEntry; slot: Buffer; extent: Buffer } }
type Start = 'blank disc' | 'disc with one copy';

describe('power-cut sweep: a cut after every WRITE of a licensed copy, then run again (issue 11 item 2)', function () {
  this.timeout(120_000);
  let w: World;
  before(async () => { w = await makeWorld({ programs: { [OLD]: { size: 5000 }, [NEW]: { size: 70_000 } } }); });
  after(() => w.cleanup());

  async function withDevice<T>(disc: string, fn: (d: ScsiDevice) => Promise<T>): Promise<T> {
    const d = await openDevice(`emu:${disc}`);
    try { return await fn(d); } finally { await d.close(); }
  }

  async function snapshot(disc: string): Promise<Before> {
    return withDevice(disc, async (d) => {
      const t = await TargetDisc.open(d);
      const entry = t.directory.entries[0];
      return {
        directory: structuredClone(t.directory), label: Buffer.from(await t.readBytes(0, LABEL_BYTES)), labelOurs: t.label.kind === 'ours',
        ...(entry ? { old: { entry, slot: Buffer.from(await t.readBytes(slotOffset(entry.slot), SLOT_BYTES)), extent: Buffer.from(await t.readBytes(entry.offset, entry.encryptedSize)) } } : {}),
      };
    });
  }

  /**
   * The disc right after a cut, through a fresh drive: 'old' or 'new' directory, or what is wrong with it.
   * A new directory must point at data that reached the disc (its SHA-256 over the extent as read now).
   */
  async function afterCut(disc: string, b: Before, expectedNew: ReturnType<typeof shape>): Promise<'old' | 'new' | string> {
    return withDevice(disc, async (d) => {
      let t: TargetDisc;
      try { t = await TargetDisc.open(d); } catch (e) { return `the disc does not open: ${errName(e)}`; }
      const labelSame = (await t.readBytes(0, LABEL_BYTES)).equals(b.label);
      // A label once written is never rewritten; on a blank disc it is written last, after the directory.
      if (b.labelOurs && !labelSame) return 'the label changed';
      if (b.old && !(await t.readBytes(slotOffset(b.old.entry.slot), SLOT_BYTES)).equals(b.old.slot)) return 'the older copy\'s license record changed';
      if (b.old && !(await t.readBytes(b.old.entry.offset, b.old.entry.encryptedSize)).equals(b.old.extent)) return 'the older copy\'s data changed';
      const dir = t.directory;
      try {
        assert.deepEqual(dir, b.directory);
        return labelSame ? 'old' : `the old directory under a changed label (${t.label.kind})`;
      } catch { /* not the old one */ }
      if (t.label.kind !== 'ours') return `a new directory under a ${t.label.kind} label`;
      if (dir.generation !== b.directory.generation + 1) return `directory generation ${dir.generation} (old ${b.directory.generation})`;
      try { assert.deepEqual(dir.entries.slice(0, -1), b.directory.entries); } catch { return 'the new directory changed the older entries'; }
      const e = dir.entries.at(-1)!;
      try { assert.deepEqual(shape(e), expectedNew); } catch { return `unexpected new entry ${JSON.stringify(e)}`; }
      if (sha(await t.readBytes(e.offset, e.encryptedSize)) !== e.sha256) return 'the new directory points at data that is not on the disc';
      const rec = await t.readSlot(e.slot);
      if (!rec || rec.contentId !== NEW) return 'the new directory points at a slot without its license record';
      return 'new';
    });
  }

  for (const [scheme, start] of [['a', 'disc with one copy'], ['b', 'disc with one copy'], ['a', 'blank disc'], ['b', 'blank disc']] as Array<[Scheme, Start]>) {
    it(`scheme ${scheme.toUpperCase()}, ${start}: every cut point leaves the old or the new directory; run again, the copy opens and is billed once`, async () => {
      const t0 = Date.now();
      const master = await openDevice(`emu:${w.masterIso}`);
      const center = new LocalCenterClient(w.ledger, w.station);
      const ledger = await Ledger.open(w.ledger, { create: false });
      const copy = (target: ScsiDevice, contentId: string): Promise<CopyResult> => copyLicensed({ master, target, contentId, scheme, center, stationKey: w.station });
      const attempt = async (target: ScsiDevice): Promise<{ ok: true; r: CopyResult } | { ok: false; e: unknown }> => {
        try { return { ok: true, r: await copy(target, NEW) }; } catch (e) { return { ok: false, e }; }
      };
      let n = 0;
      const contents = start === 'blank disc' ? [NEW] : [NEW, OLD];
      /** A fresh disc with a unique medium ID, blank or with one committed (older) copy. */
      const freshDisc = async (): Promise<{ disc: string; mediumId: string; before: Before }> => {
        const mediumId = `${scheme === 'a' ? 'a' : 'b'}${start === 'blank disc' ? '1' : '0'}${(++n).toString(16).padStart(6, '0')}`;
        const disc = w.newDisc(`sweep-${scheme}-${mediumId}.mo`, mediumId, DISC_BYTES);
        if (start !== 'blank disc') await withDevice(disc, async (d) => { await copy(d, OLD); });
        return { disc, mediumId, before: await snapshot(disc) };
      };

      // W: the WRITE commands of a full licensed copy onto such a disc.
      const ref = await freshDisc();
      const refDev = await openDevice(`emu:${ref.disc}`, { emulator: TARGET });
      await copy(refDev, NEW);
      const W = (refDev.transport as EmulatedDrive).stats.writes;
      await refDev.close();
      const expectedNew = await withDevice(ref.disc, async (d) => shape((await TargetDisc.open(d)).directory.entries.at(-1)!));
      rmSync(ref.disc);
      assert.ok(W >= 20, `a copy is a few dozen writes (W = ${W})`);

      const harmed: string[] = [];
      const doubleBilled: string[] = [];
      const errors = new Map<string, number>();
      const states = { old: 0, new: 0 };
      const resumes = { completed: 0, alreadyPresent: 0 };
      let tested = 0;
      let resumeCuts = 0;
      const note = (e: unknown) => { const k = errName(e); errors.set(k, (errors.get(k) ?? 0) + 1); };

      /** One scenario: cut after write k; optionally cut the resumed copy after write j; then run to completion. */
      const scenario = async (k: number, j?: number) => {
        const { disc, mediumId, before } = await freshDisc();
        const where = `k=${k}${j !== undefined ? ` j=${j}` : ''}`;
        const powerOnStyle = k % 2 === 1;
        let dev = await openDevice(`emu:${disc}`, { emulator: { ...TARGET, faults: [{ kind: 'power-cut-after-writes', writes: k }] } });
        const cutRun = async (label: string): Promise<boolean> => {
          const r = await attempt(dev);
          const drive = dev.transport as EmulatedDrive;
          if (r.ok) {
            // Enough writes to finish before the cut point (a resume onto an already committed disc writes nothing).
            if (!r.r.alreadyPresent && !drive.isPoweredOff) harmed.push(`${where}: ${label}: completed although the power was cut`);
            return false;
          }
          note(r.e);
          if (!(r.e instanceof MocopyError)) harmed.push(`${where}: ${label}: untyped error ${errName(r.e)}`);
          if (!drive.isPoweredOff) harmed.push(`${where}: ${label}: failed without a power cut: ${errName(r.e)}`);
          const state = await afterCut(disc, before, expectedNew);
          if (state === 'old' || state === 'new') states[state]++;
          else harmed.push(`${where}: after the ${label} cut: ${state}`);
          return true;
        };
        const restart = async (faults: DriveOptions['faults'] = []) => {
          if (powerOnStyle) {
            const drive = dev.transport as EmulatedDrive;
            drive.powerOn();
            for (const f of faults) drive.faults.add(f);
          } else {
            await dev.close();
            dev = await openDevice(`emu:${disc}`, { emulator: { ...TARGET, faults } });
          }
        };
        try {
          await cutRun('first');
          if (j !== undefined) {
            await restart([{ kind: 'power-cut-after-writes', writes: j }]);
            if (await cutRun('resumed')) resumeCuts++;
          }
          await restart();
          const final = await attempt(dev);
          if (!final.ok) { harmed.push(`${where}: the final run failed: ${errName(final.e)}`); return; }
          resumes[final.r.alreadyPresent ? 'alreadyPresent' : 'completed']++;
        } finally {
          await dev.close().catch(() => undefined);
        }
        // The disc opens with exactly the publisher's bytes (both copies), and verifies deep.
        await withDevice(disc, async (d) => {
          for (const id of contents) {
            const out = new Collect();
            try {
              await openCopy({ target: d, contentId: id, stationKey: w.station, out });
              if (!out.bytes.equals(w.programs[id]!)) harmed.push(`${where}: ${id} opens with other bytes`);
            } catch (e) {
              harmed.push(`${where}: ${id} does not open: ${errName(e)}`);
            }
          }
          const v = await verifyDisc({ target: d, stationKey: w.station, deep: true });
          if (v.results.length !== contents.length || !v.results.every((x) => x.ok)) harmed.push(`${where}: verify --deep: ${JSON.stringify(v.results.map((x) => [x.contentId, x.status, x.detail]))}`);
        });
        // Exactly one license and one billing row for (station, medium, content, scheme).
        const rep = await ledger.report();
        for (const id of contents) {
          const lic = rep.licenses.filter((l) => l.stationId === w.station.stationId && l.mediumId === mediumId && l.contentId === id && l.scheme === scheme);
          const bills = rep.billing.filter((b) => b.stationId === w.station.stationId && b.mediumId === mediumId && b.contentId === id && b.scheme === scheme);
          if (lic.length > 1 || bills.length > 1) doubleBilled.push(`${where}: ${id}: ${lic.length} licenses, ${bills.length} billing rows`);
          else if (lic.length !== 1 || bills.length !== 1 || bills[0]!.licenseId !== lic[0]!.id) harmed.push(`${where}: ${id}: ${lic.length} licenses, ${bills.length} billing rows`);
        }
        tested++;
        rmSync(disc);
      };

      try {
        for (let k = 1; k <= W; k++) await scenario(k);
        const sweepTested = tested;
        // Cuts during the resumed copy: every 5th k and the last, each cut again after a few j.
        const ks = [...new Set([...Array.from({ length: W }, (_, i) => i + 1).filter((k) => (k - 1) % 5 === 0), W])];
        const js = [...new Set([1, 2, Math.ceil(W / 2), W - 1])].filter((j) => j >= 1 && j <= W);
        for (const k of ks) for (const j of js) await scenario(k, j);
        const s = (Date.now() - t0) / 1000;
        console.log(`      scheme ${scheme.toUpperCase()}, ${start}: ${sweepTested} k tested / ${W}, harmed ${harmed.length}, double-billed ${doubleBilled.length}` +
          ` | resumed-copy cuts: ${ks.length} k x ${js.length} j = ${tested - sweepTested} scenarios (${resumeCuts} cut the resume), harmed and double-billed included above` +
          ` | after a cut: old directory ${states.old}, new directory ${states.new}; final run: completed ${resumes.completed}, already present ${resumes.alreadyPresent}` +
          ` | errors of the cut runs: ${[...errors].map(([e, c]) => `${e} x${c}`).join(', ')} | ${s.toFixed(1)} s`);
        assert.deepEqual(harmed, [], 'harmed');
        assert.deepEqual(doubleBilled, [], 'double-billed');
        assert.equal(sweepTested, W);
      } finally {
        await master.close();
        await center.close();
        await ledger.close();
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------- part 2

/** The center as a child process (test/center-fixtures/serve.ts), as `mocopy center serve` runs it. */
function startCenter(ledger: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'center-fixtures', 'serve.ts'), ledger, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout!.once('data', (d) => resolve({ child, url: String(d).trim() }));
    child.once('exit', (code) => reject(new Error(`center exited early (${code})`)));
  });
}

async function sigkill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/** Does the center answer /v1/health within `ms`? (It cannot while it is blocked inside a SQLite commit.) */
function answers(url: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const r = httpRequest(`${url}/v1/health`, { agent: false, timeout: ms }, (res) => { res.resume(); res.on('end', () => resolve(true)); });
    r.on('timeout', () => { r.destroy(); resolve(false); });
    r.on('error', () => resolve(false));
    r.end();
  });
}

interface Held { req: IncomingMessage; res: ServerResponse; body: Buffer; upstream: string }
type Plan = (h: Held) => Promise<void>;

/**
 * A loopback proxy between station and center. Every request waits until the center is up; the next
 * POST /v1/licenses is handed to `plan` (once), the rest are forwarded as they are.
 */
class Proxy {
  server!: Server;
  url = '';
  upstream = '';
  plan: Plan | undefined;
  readonly licenseBodies: string[] = [];
  private up: Promise<void> = Promise.resolve();
  private markUp: () => void = () => undefined;

  async listen(): Promise<void> {
    this.server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c) => parts.push(c));
      req.on('end', () => void this.handle({ req, res, body: Buffer.concat(parts), upstream: '' }));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** From now on requests wait (the center is down) until `isUp`. */
  down(): void {
    this.up = new Promise((r) => { this.markUp = r; });
  }

  isUp(url: string): void {
    this.upstream = url;
    this.markUp();
  }

  private async handle(h: Held): Promise<void> {
    await this.up;
    h.upstream = this.upstream;
    if (h.req.method === 'POST' && h.req.url === '/v1/licenses') {
      this.licenseBodies.push(h.body.toString());
      const plan = this.plan;
      this.plan = undefined;
      if (plan) return plan(h);
    }
    forward(h, (status, headers, body) => {
      h.res.writeHead(status, headers);
      h.res.end(body);
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Sends the held request to the center; `onResponse` gets the whole answer; a failure resets the station's connection. */
function forward(h: Held, onResponse: (status: number, headers: Record<string, string>, body: Buffer) => void, opts: { partial?: boolean } = {}) {
  const fwd = httpRequest(h.upstream + h.req.url, { method: h.req.method, headers: h.req.headers, agent: false }, (up) => {
    const parts: Buffer[] = [];
    up.on('data', (c) => parts.push(c));
    up.on('end', () => {
      const headers = { ...(up.headers as Record<string, string>) };
      delete headers['transfer-encoding'];
      delete headers.connection;
      const body = Buffer.concat(parts);
      headers['content-length'] = String(body.length);
      onResponse(up.statusCode!, headers, body);
    });
    up.on('error', () => h.res.socket?.destroy());
  });
  fwd.on('error', () => h.res.socket?.destroy());
  if (opts.partial) {
    // Headers and half the body: the center has the connection and cannot have read the request.
    fwd.flushHeaders();
    fwd.write(h.body.subarray(0, h.body.length >> 1));
  } else {
    fwd.end(h.body);
  }
  return fwd;
}

describe('power-cut sweep: the license center SIGKILLed at each phase of one license request, restarted, retried (issue 11 item 2)', function () {
  this.timeout(120_000);
  let w: World;
  let center: { child: ChildProcess; url: string };
  let proxy: Proxy;
  before(async () => {
    w = await makeWorld({ programs: { [NEW]: { size: 70_000 } } });
    center = await startCenter(w.ledger);
    proxy = new Proxy();
    await proxy.listen();
    proxy.isUp(center.url);
  });
  after(async () => {
    await proxy?.close();
    if (center) await sigkill(center.child);
    w?.cleanup();
  });

  const licensesFor = async (mediumId: string, scheme: Scheme) => {
    const l = await Ledger.open(w.ledger, { create: false });
    try {
      const rep = await l.report();
      return {
        licenses: rep.licenses.filter((x) => x.mediumId === mediumId && x.contentId === NEW && x.scheme === scheme && x.stationId === w.station.stationId),
        billing: rep.billing.filter((x) => x.mediumId === mediumId && x.contentId === NEW && x.scheme === scheme && x.stationId === w.station.stationId),
      };
    } finally {
      await l.close();
    }
  };

  /** Kill the center now (the proxy holds every later request), check the ledger at that moment, restart. */
  async function killAndRestart(h: Held, atKill: () => void | Promise<void>, beforeRestart: () => void | Promise<void> = () => undefined): Promise<void> {
    proxy.down();
    await sigkill(center.child);
    await atKill();
    h.res.socket?.destroy(); // the station's connection breaks: its client retries
    await beforeRestart();
    center = await startCenter(w.ledger);
    proxy.isUp(center.url);
  }

  const phases: Array<[string, (mediumId: string, scheme: Scheme) => Plan]> = [
    ['before it reads the request', (mediumId, scheme) => async (h) => {
      forward(h, () => undefined, { partial: true });
      await new Promise((r) => setTimeout(r, 50));
      await killAndRestart(h, async () => assert.equal((await licensesFor(mediumId, scheme)).licenses.length, 0, 'nothing committed'));
    }],
    ['after it received the request, before the ledger commit', (mediumId, scheme) => async (h) => {
      // Hold the ledger's write lock: the center's group commit blocks (synchronously, in SQLite's busy wait)
      // at its first write, so once /v1/health stops answering the request is received and not committed.
      const lock = new Database(w.ledger);
      lock.exec('BEGIN IMMEDIATE');
      try {
        assert.ok(await answers(center.url, 2000), 'the center answers before the request');
        forward(h, () => undefined);
        let blocked = false;
        for (let i = 0; i < 100 && !blocked; i++) blocked = !(await answers(center.url, 150));
        assert.ok(blocked, 'the center is inside the ledger commit');
        await killAndRestart(h, () => undefined, async () => {
          lock.exec('ROLLBACK');
          assert.equal((await licensesFor(mediumId, scheme)).licenses.length, 0, 'nothing committed');
        });
      } finally {
        if (lock.inTransaction) lock.exec('ROLLBACK');
        lock.close();
      }
    }],
    ['after the ledger commit, before the response reaches the station', (mediumId, scheme) => async (h) => {
      await new Promise<void>((resolve) => forward(h, (status) => {
        assert.equal(status, 200);
        resolve(); // the answer is dropped here
      }));
      await killAndRestart(h, async () => {
        const c = await licensesFor(mediumId, scheme);
        assert.equal(c.licenses.length, 1, 'committed before the kill');
        assert.equal(c.billing.length, 1);
      });
    }],
  ];

  let n = 0;
  for (const [phase, plan] of phases) {
    it(`killed ${phase}: restarted, the station's retry gets the license; one license, one bill; the copy opens`, async () => {
      const summary: string[] = [];
      for (const scheme of ['a', 'b'] as const) {
        const mediumId = `c0${(++n).toString(16).padStart(6, '0')}`;
        const disc = w.newDisc(`center-${n}.mo`, mediumId, DISC_BYTES);
        const bodiesBefore = proxy.licenseBodies.length;
        proxy.plan = plan(mediumId, scheme);
        const client = new HttpCenterClient(proxy.url, w.station, { attempts: 6, initialDelayMs: 20, maxDelayMs: 200, timeoutMs: 15_000 });
        const master = await openDevice(`emu:${w.masterIso}`);
        const target = await openDevice(`emu:${disc}`);
        let r: CopyResult;
        try {
          r = await copyLicensed({ master, target, contentId: NEW, scheme, center: client, stationKey: w.station });
          const out = new Collect();
          await openCopy({ target, contentId: NEW, stationKey: w.station, out });
          assert.ok(out.bytes.equals(w.programs[NEW]!), 'the copy opens with the publisher\'s bytes');
        } finally {
          await master.close();
          await target.close();
        }
        assert.equal(proxy.plan, undefined, 'the phase was hit');
        const bodies = proxy.licenseBodies.slice(bodiesBefore).map((b) => JSON.parse(b) as { requestId: string });
        assert.ok(bodies.length >= 2, 'the station retried');
        assert.equal(new Set(bodies.map((b) => b.requestId)).size, 1, 'every retry carries the same request ID');
        const c = await licensesFor(mediumId, scheme);
        assert.equal(c.licenses.length, 1, 'exactly one license');
        assert.equal(c.billing.length, 1, 'exactly one bill');
        assert.equal(c.licenses[0]!.id, r.licenseId, 'the station holds the license the ledger has');
        assert.equal(c.licenses[0]!.requestId, bodies[0]!.requestId);
        assert.equal(c.billing[0]!.licenseId, r.licenseId);
        summary.push(`scheme ${scheme.toUpperCase()}: ${bodies.length} attempts, 1 license, 1 bill`);
      }
      console.log(`      center killed ${phase}: ${summary.join('; ')}`);
    });
  }
});
