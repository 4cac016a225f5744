/** Shared test fixtures: temp dirs, a ledger with a station and contents, a master, blank MO images. */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { LicenseCenter } from '../../lib/center/center.js';
import { openLedger, type LedgerReport } from '../../lib/center/ledger.js';
import { writeStationKey } from '../../lib/center/station-key.js';
import type { Scheme, StationKey } from '../../lib/domain/index.js';
import { createMoImage } from '../../lib/emulator/index.js';
import { buildMaster } from '../../lib/master/index.js';

export function tempDir(prefix = 'mocopy-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface World {
  dir: string;
  ledger: string;
  masterIso: string;
  station: StationKey;
  stationKeyPath: string;
  programs: Record<string, Buffer>;
  newDisc(name: string, mediumIdHex: string, capacity?: number, blockSize?: 512 | 2048): string;
  cleanup(): void;
}

/**
 * A ledger, one station, a master with the given programs (default: two), in a fresh temp dir.
 * `ledger`: a migrated PostgreSQL URL to use instead of a SQLite file in the dir.
 */
export async function makeWorld(opts: { programs?: Record<string, { size: number; schemes?: Scheme[] }>; ledger?: string } = {}): Promise<World> {
  const { dir, cleanup } = tempDir();
  const ledger = opts.ledger ?? join(dir, 'ledger.db');
  const center = await LicenseCenter.open(ledger);
  const station = await center.addStation('test station');
  const stationKeyPath = join(dir, 'station.key');
  writeStationKey(stationKeyPath, station);
  const specs = opts.programs ?? { 'APP-1': { size: 200_000 }, 'APP-2': { size: 70_000 } };
  const programs: Record<string, Buffer> = {};
  const contents = [];
  for (const [id, s] of Object.entries(specs)) {
    const data = randomBytes(s.size);
    programs[id] = data;
    const src = join(dir, `${id}.bin`);
    writeFileSync(src, data);
    const schemes = s.schemes ?? ['a', 'b'];
    const { contentKey } = await center.registerContent({ contentId: id, name: `Program ${id}`, schemes, price: 1500 });
    contents.push({ contentId: id, name: `Program ${id}`, sourcePath: src, key: contentKey, schemes });
  }
  await center.close();
  const masterIso = join(dir, 'master.iso');
  await buildMaster({ out: masterIso, contents });
  return {
    dir, ledger, masterIso, station, stationKeyPath, programs,
    newDisc(name, mediumIdHex, capacity = 8 << 20, blockSize = 2048) {
      const p = join(dir, name);
      createMoImage(p, { mediumId: Buffer.from(mediumIdHex, 'hex'), capacityBytes: capacity, blockSize });
      return p;
    },
    cleanup,
  };
}

/** The ledger's licenses and bills, read through a connection of its own. */
export async function ledgerReport(spec: string): Promise<LedgerReport> {
  const l = await openLedger(spec, { create: false });
  try {
    return await l.report();
  } finally {
    await l.close();
  }
}

/** Opens the center on a ledger, runs `f`, closes it. */
export async function withCenter<T>(spec: string, f: (c: LicenseCenter) => Promise<T>): Promise<T> {
  const c = await LicenseCenter.open(spec);
  try {
    return await f(c);
  } finally {
    await c.close();
  }
}

export function privateFile(path: string, data: string | Buffer): void {
  writeFileSync(path, data, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** A Writable that keeps what it is given (the output of `open`). */
export class Collect extends Writable {
  parts: Buffer[] = [];
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void) { this.parts.push(c); cb(); }
  get bytes(): Buffer { return Buffer.concat(this.parts); }
}
