/**
 * The win32-x64 addon (prebuilds/win32-x64/mocopy.node, linked by scripts/build-windows.sh) under a Windows
 * node.exe: run by scripts/test-windows.sh under wine64 (through tsx, with esbuild's Windows binary).
 * Loads the addon through the same loader as the CLI (node-gyp-build), then checks the platform, the async
 * round trip, the typed errors of device paths that do not exist or are malformed, and the CDB/buffer
 * validation the Linux addon does (test/native.test.ts). Prints `N passed, N failed`; exits 1 on any failure.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as cdb from '../lib/scsi/cdb.js';
import { listDevices } from '../lib/scsi/list-devices.js';
import { executeUnbound, loadedAddonPath, loadNativeBinding, type NativeBinding } from '../lib/scsi/native-binding.js';
import { hintForErrno, openNative } from '../lib/scsi/native-transport.js';
import { TransportError } from '../lib/scsi/scsi-errors.js';

const tests: Array<[string, () => unknown]> = [];
const it = (name: string, fn: () => unknown): void => void tests.push([name, fn]);
let binding: NativeBinding;
const dir = mkdtempSync(join(tmpdir(), 'mocopy-win-'));
const file = join(dir, 'file.bin');
writeFileSync(file, Buffer.alloc(4096));

function typed(code: string, hint?: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof TransportError, `a TransportError, not ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (hint) assert.match(e.hint ?? '', hint);
    return true;
  };
}

it('the addon loads through node-gyp-build from prebuilds/win32-x64', () => {
  binding = loadNativeBinding();
  assert.match(loadedAddonPath() ?? '', /prebuilds[\\/]win32-x64[\\/]mocopy\.node$/);
});
it('platform: the addon and Node both say win32', () => {
  assert.equal(binding.platform, 'win32');
  assert.equal(process.platform, 'win32');
});
it('async round trip on the libuv pool: 200 nopAsync in flight, then nop', async () => {
  const results = await Promise.all(Array.from({ length: 200 }, () => binding.nopAsync()));
  assert.equal(results.length, 200);
  assert.equal(binding.nop(), undefined);
});
it('\\\\.\\CdRom9 (no such CD-ROM) -> ENOENT with the `mocopy devices` hint', async () => {
  await assert.rejects(openNative('\\\\.\\CdRom9'), typed('ENOENT', /mocopy devices/));
});
it('\\\\.\\PhysicalDrive99 -> ENOENT', async () => {
  await assert.rejects(openNative('\\\\.\\PhysicalDrive99'), typed('ENOENT', /does not exist/));
});
it('\\\\.\\Scsi9: (no such adapter) -> ENOENT', async () => {
  await assert.rejects(openNative('\\\\.\\Scsi9:'), typed('ENOENT'));
});
it('malformed paths -> EINVAL (ERROR_INVALID_NAME), an empty one -> TypeError before the addon', async () => {
  await assert.rejects(openNative('\\\\.\\bad<>|name'), typed('EINVAL'));
  await assert.rejects(openNative('\\\\.\\'), typed('EINVAL'));
  await assert.rejects(openNative(''), TypeError);
});
it('the raw addon error carries code, errno, the Windows code and the syscall', () => {
  assert.throws(() => binding.open('\\\\.\\CdRom9', { write: false }), (e: NodeJS.ErrnoException & { oscode?: number }) =>
    e.code === 'ENOENT' && e.errno === 2 && e.oscode === 2 /* ERROR_FILE_NOT_FOUND */ && e.syscall === 'CreateFile' && /CdRom9/.test(e.message));
  assert.throws(() => binding.open('\\\\.\\bad<>|name', { write: false }), (e: NodeJS.ErrnoException & { oscode?: number }) =>
    e.code === 'EINVAL' && e.oscode === 123 /* ERROR_INVALID_NAME */);
});
it('EACCES on Windows hints at Administrator, not at Unix groups', () => {
  assert.match(hintForErrno('EACCES', '\\\\.\\CdRom0', 'open') ?? '', /Administrator/);
});
it('a regular file is not a SCSI device: ENOTTY at open (as on Linux)', async () => {
  await assert.rejects(openNative(file), (e: unknown) => typed('ENOTTY')(e) && /a regular file is not a SCSI device/.test((e as Error).message));
});
it('a pass-through on a regular file -> ENOTTY (ERROR_NOT_SUPPORTED), buffered and direct, as SG_IO on Linux', async () => {
  const h = binding.open(file, { write: false });
  try {
    for (const len of [2048, 65536]) {
      await assert.rejects(executeUnbound(binding, h, cdb.read10(0, len / 2048), 1, Buffer.alloc(len), 1000),
        (e: NodeJS.ErrnoException) => e.code === 'ENOTTY' && new RegExp(`DeviceIoControl\\(IOCTL_SCSI_PASS_THROUGH${len > 4096 ? '_DIRECT' : ''}\\)`).test(e.message));
    }
  } finally {
    binding.close(h);
  }
});
it('bad arguments throw TypeError in the addon (same checks as Linux)', () => {
  const h = binding.open(file, { write: false });
  try {
    assert.throws(() => binding.execute(h, Buffer.alloc(0), 0, undefined, 10), TypeError);
    assert.throws(() => binding.execute(h, Buffer.alloc(20), 0, undefined, 10), TypeError);
    assert.throws(() => binding.execute(h, cdb.testUnitReady(), 1, undefined, 10), TypeError);
    assert.throws(() => binding.execute(h, cdb.testUnitReady(), 0, Buffer.alloc(4), 10), /disagree/);
    assert.throws(() => binding.execute(h, cdb.testUnitReady(), 0, undefined, -5), TypeError);
    assert.throws(() => binding.execute(h, cdb.testUnitReady(), 7 as 0, undefined, 10), TypeError);
    assert.throws(() => binding.execute(h, 'x' as unknown as Buffer, 0, undefined, 10), /cdb must be a Buffer/);
    assert.throws(() => binding.execute(999999, cdb.testUnitReady(), 0, undefined, 10), /closed or was never opened/);
    for (const t of [Number.NaN, Number.POSITIVE_INFINITY, 0, 0.5, 86_400_001, 1e12]) {
      assert.throws(() => binding.execute(h, cdb.testUnitReady(), 0, undefined, t), /timeoutMs must be a number from 1 to 86400000/, String(t));
    }
    assert.throws(() => binding.open(42 as unknown as string, { write: false }), TypeError);
  } finally {
    binding.close(h);
  }
});
it('the TypeScript layer rejects bad commands before the addon, as on Linux', async () => {
  const fake: NativeBinding = { ...binding, open: () => 1, limits: () => ({ maxTransferBytes: 65536, alignment: 4, reservedSize: 0, maxSectors: 0 }), close: () => undefined,
    handleInfo: () => ({ mode: 'worker', fallbackReason: 'a fake binding' }) as never,
    execute: () => { throw new Error('reached the addon'); } };
  const tr = await openNative('\\\\.\\CdRom0', { binding: fake });
  assert.deepEqual(tr.limits, { maxTransferBytes: 65536, alignment: 4 });
  for (const c of [
    { cdb: Buffer.alloc(0), direction: 'none', timeoutMs: 10 },
    { cdb: Buffer.alloc(17), direction: 'none', timeoutMs: 10 },
    { cdb: cdb.read10(0, 1), direction: 'in', timeoutMs: 10 },
    { cdb: cdb.testUnitReady(), direction: 'sideways', timeoutMs: 10 },
    { cdb: cdb.testUnitReady(), direction: 'none', timeoutMs: Number.NaN },
    { cdb: cdb.read10(0, 64), direction: 'in', data: Buffer.alloc(131072), timeoutMs: 10 },
  ]) await assert.rejects(tr.execute(c as never), TypeError, JSON.stringify(c));
});
it('a detached buffer is refused at submit; one detached in flight fails the command (EDETACHED)', async () => {
  const h = binding.open(file, { write: false });
  try {
    const gone = new Uint8Array(new ArrayBuffer(2048));
    structuredClone(gone.buffer, { transfer: [gone.buffer] });
    assert.throws(() => binding.execute(h, cdb.read10(0, 1), 1, gone as Buffer, 1000), /detached/);
    const buf = new Uint8Array(new ArrayBuffer(2048));
    const p = executeUnbound(binding, h, cdb.read10(0, 1), 1, buf as Buffer, 1000);
    structuredClone(buf.buffer, { transfer: [buf.buffer] });
    await assert.rejects(p, (e: NodeJS.ErrnoException) => e.code === 'EDETACHED');
  } finally {
    binding.close(h);
  }
});
it('64 commands in flight and a close in the middle: no crash, the handle is released after the last one', async () => {
  const before = binding.openHandles();
  const h = binding.open(file, { write: false });
  const all = Array.from({ length: 64 }, () => executeUnbound(binding, h, cdb.read10(0, 1), 1, Buffer.alloc(2048), 1000).then(() => 'ok', (e: NodeJS.ErrnoException) => e.code));
  binding.close(h);
  const codes = await Promise.all(all);
  assert.ok(codes.every((c) => c === 'ENOTTY'), [...new Set(codes)].join(','));
  assert.equal(binding.openHandles(), before);
  assert.throws(() => binding.execute(h, cdb.testUnitReady(), 0, undefined, 10), /closed/);
});
it('device listing: the addon enumerates SetupDi interfaces and \\\\.\\ScsiN: adapters; `devices` maps it', () => {
  assert.equal(typeof binding.listDevices, 'function', 'the win32 addon exports listDevices');
  const raw = binding.listDevices!();
  for (const k of ['interfaces', 'ports', 'adapterLuns'] as const) assert.ok(Number.isInteger(raw.stats[k]) && raw.stats[k] >= 0, k);
  const list = listDevices();
  assert.equal(list.length, raw.devices.length);
  for (const d of list) {
    assert.match(d.sg, /^\\\\[.?]\\/);
    assert.ok(d.source === 'setupdi' || d.source === 'scsi-port');
    assert.ok(d.peripheralType >= 0 && d.peripheralType <= 31);
  }
  console.log(`  (this Windows: ${raw.stats.interfaces} CD-ROM/disk interfaces, ${raw.stats.ports} SCSI adapters, ${raw.stats.adapterLuns} adapter LUNs; ` +
    `devices: ${list.length ? list.map((d) => `${d.sg} ${d.typeName} ${d.vendor} ${d.product}`).join('; ') : 'none'})`);
});

let passed = 0;
let failed = 0;
for (const [name, fn] of tests) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n  ${String((e as Error)?.stack ?? e).split('\n').slice(0, 4).join('\n  ')}`);
  }
}
rmSync(dir, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
