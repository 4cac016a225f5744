import { strict as assert } from 'node:assert';
import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { LicenseCenter } from '../lib/center/center.js';
import { Ledger } from '../lib/center/ledger.js';
import { LocalCenterClient } from '../lib/center/local-client.js';
import type { CenterClient, LicenseA, Scheme, StationKey } from '../lib/center/types.js';
import { EmulatedDrive, MO_HEADER_SIZE, setMoWriteProtect, type DriveOptions } from '../lib/emulator/index.js';
import { MocopyError } from '../lib/errors.js';
import { DATA_OFFSET } from '../lib/formats/disc-layout.js';
import { openCopy } from '../lib/protocol/open-copy.js';
import { copyLicensed, type CopyResult } from '../lib/protocol/station.js';
import { verifyDisc } from '../lib/protocol/verify-disc.js';
import { openDevice } from '../lib/drives/open.js';
import type { ScsiDevice } from '../lib/scsi/device.js';
import { Collect, makeWorld, type World, ledgerReport, withCenter } from './helpers/fixtures.js';


/** The metadata area of an MO image: label, license region, both directories. */
function metadata(image: string): Buffer {
  const fd = openSync(image, 'r');
  const b = Buffer.alloc(DATA_OFFSET);
  readSync(fd, b, 0, b.length, MO_HEADER_SIZE);
  closeSync(fd);
  return b;
}

describe('licensed copy, end to end on emulated drives', function () {
  this.timeout(60_000);
  let w: World;
  beforeEach(async () => { w = await makeWorld(); });
  afterEach(() => w.cleanup());

  async function copy(disc: string, scheme: Scheme, o: { contentId?: string; center?: CenterClient; stationKey?: StationKey; target?: DriveOptions; onEvent?: (t: ScsiDevice, step: string) => Promise<void> | void; master?: string } = {}): Promise<CopyResult> {
    const master = await openDevice(`emu:${o.master ?? w.masterIso}`);
    const target = await openDevice(`emu:${disc}`, { emulator: o.target ?? {} });
    const center = o.center ?? new LocalCenterClient(w.ledger, o.stationKey ?? w.station);
    const events: Array<Promise<void> | void> = [];
    try {
      return await copyLicensed({ master, target, contentId: o.contentId ?? 'APP-1', scheme, center, stationKey: o.stationKey ?? w.station, onEvent: (e) => { if (o.onEvent) events.push(o.onEvent(target, e.step)); } });
    } finally {
      await Promise.all(events);
      await master.close();
      await target.close().catch(() => undefined);
      await center.close();
    }
  }
  async function open(disc: string, contentId = 'APP-1', stationKey: StationKey | undefined = w.station): Promise<Buffer> {
    const target = await openDevice(`emu:${disc}`);
    try {
      const sink = new Collect();
      await openCopy({ target, contentId, ...(stationKey ? { stationKey } : {}), out: sink });
      return sink.bytes;
    } finally {
      await target.close();
    }
  }
  const report = async () => (await ledgerReport(w.ledger));

  for (const scheme of ['a', 'b'] as const) {
    it(`scheme ${scheme.toUpperCase()}: copy, then open gives the publisher's bytes; billed once`, async () => {
      const disc = w.newDisc('d.mo', '0011223344556677');
      const r = await copy(disc, scheme);
      assert.equal(r.alreadyPresent, false);
      assert.ok((await open(disc)).equals(w.programs['APP-1']!));
      const r2 = await copy(disc, scheme, { contentId: 'APP-2' });
      assert.equal(r2.slot, 1);
      assert.ok((await open(disc, 'APP-2')).equals(w.programs['APP-2']!));
      const again = await copy(disc, scheme);
      assert.equal(again.alreadyPresent, true);
      const rep = (await report());
      assert.equal(rep.licenses.length, 2);
      assert.equal(rep.billing.length, 2);
      assert.deepEqual(rep.licenses.map((l) => [l.contentId, l.mediumId, l.scheme, l.stationId]), [['APP-1', '0011223344556677', scheme, w.station.stationId], ['APP-2', '0011223344556677', scheme, w.station.stationId]]);
      const v = await (async () => { const t = await openDevice(`emu:${disc}`); try { return await verifyDisc({ target: t, stationKey: w.station, deep: true }); } finally { await t.close(); } })();
      assert.deepEqual(v.results.map((x) => x.ok), [true, true]);
    });

    it(`scheme ${scheme.toUpperCase()}: works on 512-byte-block discs too`, async () => {
      const disc = w.newDisc('d512.mo', '0a0b0c0d', 8 << 20, 512);
      await copy(disc, scheme);
      assert.ok((await open(disc)).equals(w.programs['APP-1']!));
    });

    it(`scheme ${scheme.toUpperCase()}: a bit-for-bit clone on a disc with another medium ID does not open`, async () => {
      const disc = w.newDisc('orig.mo', '1111111111111111');
      await copy(disc, scheme);
      const clone = w.newDisc('clone.mo', '2222222222222222');
      const a = readFileSync(disc);
      const fd = openSync(clone, 'r+');
      writeSync(fd, a, MO_HEADER_SIZE, a.length - MO_HEADER_SIZE, MO_HEADER_SIZE);
      closeSync(fd);
      await assert.rejects(open(clone), (e: MocopyError) => e.code === 'E_WRONG_MEDIUM' && /not licensed for this disc/.test(e.message));
    });
  }

  const refusals: Array<[string, (disc: string) => Promise<unknown>, string | RegExp]> = [
    ['unknown content (not at the center)', async (disc) => {
      const db = new Database(w.ledger);
      db.prepare("DELETE FROM contents WHERE id = 'APP-2'").run();
      db.close();
      return copy(disc, 'a', { contentId: 'APP-2' });
    }, 'E_UNKNOWN_CONTENT'],
    ['content not on the master', (disc) => copy(disc, 'a', { contentId: 'NOPE' }), /not on the master/],
    ['revoked station', async (disc) => {
      await withCenter(w.ledger, (c) => c.revokeStation(w.station.stationId));
      return copy(disc, 'b');
    }, 'E_STATION_REVOKED'],
    ['wrong station key', (disc) => copy(disc, 'a', { stationKey: { ...w.station, key: Buffer.alloc(32, 7) } }), 'E_WRONG_STATION_KEY'],
    ['tampered CS', (disc) => {
      const inner = new LocalCenterClient(w.ledger, w.station);
      const tampering: CenterClient = {
        async requestLicense(req) {
          const l = (await inner.requestLicense(req)) as LicenseA;
          const cs = Buffer.from(l.certificate, 'hex');
          cs[0]! ^= 1;
          return { ...l, certificate: cs.toString('hex') };
        },
        listContents: () => inner.listContents(),
        close: () => inner.close(),
      };
      return copy(disc, 'a', { center: tampering });
    }, 'E_CERTIFICATE_MISMATCH'],
    ['tampered ciphertext chunk on the master', async (disc) => {
      const iso = readFileSync(w.masterIso);
      // The first program's extent follows the catalog; flip a byte well inside its first chunk.
      const at = iso.indexOf(Buffer.from('MOCOPYE1')) + 2048 + 1000;
      iso[at]! ^= 0xff;
      const bad = join(w.dir, 'bad-master.iso');
      writeFileSync(bad, iso);
      return copy(disc, 'a', { master: bad });
    }, 'E_INTEGRITY'],
    ['truncated program on the master', async (disc) => {
      const bad = join(w.dir, 'short-master.iso');
      writeFileSync(bad, readFileSync(w.masterIso).subarray(0, statSync(w.masterIso).size - 40 * 2048));
      return copy(disc, 'b', { master: bad, contentId: 'APP-2' });
    }, /past the end|truncated/],
    ['write-protected target', async (disc) => { setMoWriteProtect(disc, true); return copy(disc, 'a'); }, 'E_WRITE_PROTECTED'],
    ['target too small', async () => copy(w.newDisc('tiny.mo', '77', 400 * 1024), 'a'), 'E_TARGET_TOO_SMALL'],
    ['disc swapped between reading its medium ID and writing', async (disc) => {
      const other = w.newDisc('other.mo', '9999999999999999');
      const before = metadata(other);
      await assert.rejects(copy(disc, 'a', { onEvent: async (t, step) => { if (step === 'S1') await (t.transport as EmulatedDrive).insert(other); } }), (e: MocopyError) => e.code === 'E_MEDIUM_CHANGED');
      assert.ok(metadata(other).equals(before), 'nothing was written to the swapped-in disc');
      throw Object.assign(new Error('swap refused'), { code: 'E_MEDIUM_CHANGED' });
    }, 'E_MEDIUM_CHANGED'],
  ];
  for (const [name, run, expected] of refusals) {
    it(`refuses: ${name}, and leaves the target as it was`, async () => {
      const disc = w.newDisc('t.mo', '5555555555555555');
      // A disc that already holds one licensed copy: the refusal must not disturb it.
      if (name !== 'revoked station' && name !== 'wrong station key') await copy(disc, 'b', { contentId: name === 'unknown content (not at the center)' ? 'APP-1' : 'APP-2' });
      const before = metadata(disc);
      const billed = (await report()).billing.length;
      await assert.rejects(run(disc), (e: Error & { code?: string }) => {
        const ok = typeof expected === 'string' ? e.code === expected : expected.test(e.message);
        if (!ok) throw e;
        assert.ok(e.message.length > 10 && !/undefined/.test(e.message), `a clear message: ${e.message}`);
        return true;
      });
      if (!name.startsWith('target too small')) assert.ok(metadata(disc).equals(before), 'label, license region and directory unchanged');
      if (['unknown content (not at the center)', 'revoked station', 'wrong station key', 'content not on the master', 'write-protected target', 'target too small'].some((n) => name.startsWith(n))) {
        assert.equal((await report()).billing.length, billed, 'nothing billed');
      }
    });
  }

  it('a copy interrupted by a power cut leaves the disc as it was; run again, it completes and is billed once', async () => {
    const disc = w.newDisc('p.mo', '6666666666666666');
    await copy(disc, 'a', { contentId: 'APP-2' });
    const before = metadata(disc);
    await assert.rejects(copy(disc, 'b', { target: { faults: [{ kind: 'power-cut-after-writes', writes: 2 }] } }), (e: MocopyError) => e.code !== undefined);
    assert.ok(metadata(disc).subarray(DATA_OFFSET - 2 * 65536).equals(before.subarray(DATA_OFFSET - 2 * 65536)), 'directory unchanged');
    const t = await openDevice(`emu:${disc}`);
    const v = await verifyDisc({ target: t, stationKey: w.station });
    await t.close();
    assert.deepEqual(v.results.map((r) => r.contentId), ['APP-2'], 'the interrupted copy is not on the disc');
    const r = await copy(disc, 'b');
    assert.equal(r.alreadyPresent, false);
    assert.ok((await open(disc)).equals(w.programs['APP-1']!));
    const rep = (await report());
    assert.equal(rep.billing.filter((b) => b.contentId === 'APP-1').length, 1, 'billed once');
    assert.equal(rep.licenses.length, rep.billing.length);
  });

  it('a power cut during the directory commit leaves the older directory copy in force', async () => {
    const disc = w.newDisc('q.mo', '7777777777777777');
    await copy(disc, 'a', { contentId: 'APP-2' });
    // Writes of a scheme-A copy of APP-1: slot (1), data (several), directory (1), label none. Cut right after the data.
    let n = 1;
    for (;;) {
      try {
        await copy(disc, 'a', { target: { faults: [{ kind: 'power-cut-after-writes', writes: n }] } });
        break; // enough writes to finish: the copy completed
      } catch {
        const t = await openDevice(`emu:${disc}`);
        const v = await verifyDisc({ target: t, stationKey: w.station });
        await t.close();
        assert.ok(v.results.every((x) => x.ok), `after a cut at write ${n} every record on the disc still verifies`);
        n++;
      }
    }
    assert.ok(n > 2);
    assert.ok((await open(disc)).equals(w.programs['APP-1']!));
    assert.equal((await report()).billing.filter((b) => b.contentId === 'APP-1').length, 1);
  });

  it('an interrupted copy (Ctrl-C at the station) stops, restores the slot and unlocks the disc', async () => {
    const disc = w.newDisc('int.mo', '8888888888888888');
    await copy(disc, 'b', { contentId: 'APP-2' });
    const before = metadata(disc);
    const master = await openDevice(`emu:${w.masterIso}`);
    const target = await openDevice(`emu:${disc}`);
    const center = new LocalCenterClient(w.ledger, w.station);
    const stop = new AbortController();
    try {
      await assert.rejects(copyLicensed({
        master, target, contentId: 'APP-1', scheme: 'a', center, stationKey: w.station, signal: stop.signal,
        onEvent: (e) => { if (e.message === 'progress' && (e.bytes ?? 0) > 0) stop.abort(new MocopyError('E_INTERRUPTED', 'interrupted')); },
      }), (e: MocopyError) => e.code === 'E_INTERRUPTED');
      assert.equal((target.transport as EmulatedDrive).isRemovalPrevented, false, 'PREVENT released');
    } finally {
      await master.close(); await target.close(); await center.close();
    }
    assert.ok(metadata(disc).equals(before), 'label, license region and directory as they were');
    await copy(disc, 'a');
    assert.ok((await open(disc)).equals(w.programs['APP-1']!));
  });

  it('a master without the scheme refuses before anything is billed', async () => {
    const w2 = await makeWorld({ programs: { 'ONLY-A': { size: 5000, schemes: ['a'] } } });
    try {
      const disc = w2.newDisc('x.mo', '01');
      const master = await openDevice(`emu:${w2.masterIso}`);
      const target = await openDevice(`emu:${disc}`);
      const center = new LocalCenterClient(w2.ledger, w2.station);
      await assert.rejects(copyLicensed({ master, target, contentId: 'ONLY-A', scheme: 'b', center, stationKey: w2.station }), (e: MocopyError) => e.code === 'E_SCHEME_NOT_ALLOWED');
      await master.close(); await target.close(); await center.close();
    } finally {
      w2.cleanup();
    }
  });

  it('refuses to write over a disc holding someone else\'s data', async () => {
    const disc = w.newDisc('foreign.mo', '42');
    const fd = openSync(disc, 'r+');
    writeSync(fd, Buffer.from('FAT32   some filesystem'), 0, 23, MO_HEADER_SIZE);
    closeSync(fd);
    await assert.rejects(copy(disc, 'a'), (e: MocopyError) => e.code === 'E_FOREIGN_DISC');
  });
});
