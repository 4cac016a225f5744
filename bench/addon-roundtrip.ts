/** Native addon round trips per second (libuv pool hop) against a synchronous no-op call into the addon. */
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { executeUnbound, loadNativeBinding } from '../lib/scsi/native-binding.js';
import * as cdb from '../lib/scsi/cdb.js';
import { header, now, row } from './util.js';

export async function run(): Promise<void> {
  const b = loadNativeBinding();
  header('addon round trips (calls/s; ratio = against the sync no-op call)');
  const N = 20000;
  let t0 = now();
  for (let i = 0; i < N * 10; i++) b.nop();
  const syncRate = (N * 10) / ((now() - t0) / 1000);
  const rate = async (label: string, inflight: number, call: () => Promise<unknown>) => {
    let left = N;
    t0 = now();
    await Promise.all(Array.from({ length: inflight }, async () => { while (left-- > 0) await call().catch(() => undefined); }));
    const r = N / ((now() - t0) / 1000);
    console.log(row([label, inflight, Math.round(r), (r / syncRate).toExponential(2)], [34, 9, 10, 10]));
  };
  console.log(row(['call', 'inflight', 'calls/s', 'ratio'], [34, 9, 10, 10]));
  console.log(row(['nop() sync baseline', 1, Math.round(syncRate), '1'], [34, 9, 10, 10]));
  await rate('nopAsync() (pool hop)', 1, () => b.nopAsync());
  await rate('nopAsync() (pool hop)', 8, () => b.nopAsync());
  const dir = mkdtempSync(join(tmpdir(), 'mocopy-bench-'));
  const f = join(dir, 'f');
  writeFileSync(f, Buffer.alloc(16));
  const h = b.open(f, { write: false });
  const c = cdb.testUnitReady();
  await rate('execute() -> ENOTTY (ioctl path)', 1, () => executeUnbound(b, h, c, 0, undefined, 1000));
  await rate('execute() -> ENOTTY (ioctl path)', 8, () => executeUnbound(b, h, c, 0, undefined, 1000));
  b.close(h);
  rmSync(dir, { recursive: true, force: true });
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
