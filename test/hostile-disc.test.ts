/**
 * Hostile input from discs (issue 17): a copy whose payload was changed and whose stored digest was
 * recomputed; directories whose checksum holds but whose content is malformed.
 */
import { strict as assert } from 'node:assert';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { decodeDirectory, DIRECTORY_BYTES, DIRECTORY_OFFSETS, encodeDirectory, type Directory } from '../lib/formats/disc-layout.js';
import { Ledger, MO_HEADER_SIZE } from '../lib/index.js';
import { createHash } from 'node:crypto';
import { mocopy } from './helpers/cli.js';
import { makeWorld, type World, ledgerReport } from './helpers/fixtures.js';

function rw(path: string, offset: number, length: number, change?: (b: Buffer) => void): Buffer {
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, MO_HEADER_SIZE + offset);
    if (change) {
      change(b);
      writeSync(fd, b, 0, length, MO_HEADER_SIZE + offset);
    }
    return b;
  } finally {
    closeSync(fd);
  }
}

/** The directory copy in force on the image, and which copy it is. */
function currentDirectory(path: string): { dir: Directory; copy: number } {
  const copies = DIRECTORY_OFFSETS.map((o) => decodeDirectory(rw(path, o, DIRECTORY_BYTES)));
  const copy = (copies[1]?.generation ?? -1) > (copies[0]?.generation ?? -1) ? 1 : 0;
  return { dir: copies[copy]!, copy };
}

/** Writes raw directory bytes with a valid checksum: what a crafted or broken writer leaves. */
function writeDirectoryBytes(path: string, copy: number, body: unknown, generation: number): void {
  const b = Buffer.alloc(DIRECTORY_BYTES);
  const json = Buffer.from(JSON.stringify(body));
  b.write('MOCOPYDR', 0, 'latin1');
  b.writeBigUInt64BE(BigInt(generation), 8);
  b.writeUInt32BE(json.length, 16);
  json.copy(b, 20);
  createHash('sha256').update(b.subarray(0, 20 + json.length)).digest().copy(b, 20 + json.length);
  rw(path, DIRECTORY_OFFSETS[copy]!, DIRECTORY_BYTES, (x) => b.copy(x));
}

describe('hostile input: discs', function () {
  this.timeout(120_000);
  let w: World;
  let env: Record<string, string>;
  before(async () => {
    w = await makeWorld();
    env = { MOCOPY_CENTER_DB: w.ledger, MOCOPY_STATION_KEY: w.stationKeyPath };
  });
  after(() => w.cleanup());
  const bills = async () => (await ledgerReport(w.ledger)).billing.length;

  function copied(name: string, mid: string, scheme: 'a' | 'b'): string {
    const disc = w.newDisc(name, mid);
    const r = mocopy(['copy', `emu-cd:${w.masterIso}`, `emu:${disc}`, '--content', 'APP-1', '--scheme', scheme], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return disc;
  }

  for (const scheme of ['a', 'b'] as const) {
    it(`scheme ${scheme.toUpperCase()}: a changed payload with its stored SHA-256 recomputed fails verify --deep (exit 5, copy and offset named)`, async () => {
      const disc = copied(`rehash-${scheme}.mo`, scheme === 'a' ? '11aa22bb' : '11aa22cc', scheme);
      assert.equal(mocopy(['verify', `emu:${disc}`, '--deep'], env).code, 0, 'intact copy verifies');
      const { dir, copy } = currentDirectory(disc);
      const e = dir.entries[0]!;
      const at = e.offset + 100_000; // inside the second chunk
      rw(disc, at, 1, (b) => { b[0] ^= 0x01; });
      const h = createHash('sha256');
      h.update(rw(disc, e.offset, e.encryptedSize));
      const rehashed = { ...dir, entries: [{ ...e, sha256: h.digest('hex') }] };
      rw(disc, DIRECTORY_OFFSETS[copy]!, DIRECTORY_BYTES, (b) => encodeDirectory(rehashed).copy(b));
      const r = mocopy(['verify', `emu:${disc}`, '--deep', '--json'], env);
      assert.equal(r.code, 5, r.stdout + r.stderr);
      const res = JSON.parse(r.stdout).results[0];
      assert.equal(res.status, 'failed');
      assert.equal(res.checks.data, 'failed');
      assert.match(res.detail, /APP-1 at disc byte \d+: .*chunk 1 failed authentication/);
      assert.ok(res.failedAt <= at && at < res.failedAt + 65536, `failedAt ${res.failedAt} holds the changed byte ${at}`);
      assert.equal(mocopy(['verify', `emu:${disc}`], env).code, 0, 'without --deep only the license is checked');
    });
  }

  it('verify without the station key says which checks it could not make (exit 2), never "ok"', async () => {
    const disc = copied('nokey.mo', '33dd44ee', 'a');
    const r = mocopy(['verify', `emu:${disc}`, '--deep', '--json'], { MOCOPY_STATION_KEY: '' });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const res = JSON.parse(r.stdout).results[0];
    assert.equal(res.status, 'unchecked');
    assert.match(res.detail, /not checked: a scheme-A copy needs the station key/);
  });

  const crafted: Array<[string, unknown[]]> = [
    ['entries: [null]', [null]],
    ['an offset that is the string "x"', [{ contentId: 'APP-2', name: 'x', scheme: 'a', slot: 5, offset: 'x', encryptedSize: 4096, plainSize: 10, sha256: '0'.repeat(64), committed: 'now' }]],
    ['an extent past the end of the medium', [{ contentId: 'APP-2', name: 'x', scheme: 'a', slot: 5, offset: 327680, encryptedSize: 1 << 30, plainSize: 10, sha256: '0'.repeat(64), committed: 'now' }]],
  ];
  for (const [what, entries] of crafted) {
    it(`a directory with a valid checksum but ${what}: verify and open exit 6; copy exits 5 or 6 and bills nothing`, async () => {
      const disc = copied(`crafted-${what.length}.mo`, `55ee66${what.length.toString(16).padStart(2, '0')}`, 'a');
      const { copy, dir } = currentDirectory(disc);
      writeDirectoryBytes(disc, copy === 0 ? 1 : 0, { v: 1, generation: dir.generation + 1, entries }, dir.generation + 1);
      const v = mocopy(['verify', `emu:${disc}`], env);
      assert.equal(v.code, 6, v.stdout + v.stderr);
      assert.match(v.stderr, /disc directory/);
      assert.equal(mocopy(['open', `emu:${disc}`, '--content', 'APP-1', '--out', join(w.dir, 'x.out')], env).code, 6);
      const before = (await bills());
      const c = mocopy(['copy', `emu-cd:${w.masterIso}`, `emu:${disc}`, '--content', 'APP-2'], env);
      assert.ok(c.code === 5 || c.code === 6, `copy exit ${c.code}: ${c.stderr}`);
      assert.equal((await bills()), before, 'no new bill');
    });
  }
});
