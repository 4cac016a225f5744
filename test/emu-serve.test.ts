/** `mocopy emu serve --iscsi` as a user runs it: the ready line, SIGTERM, images flushed, refusals. */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, openSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMoImage, MO_HEADER_SIZE } from '../lib/index.js';
import { mocopy } from './helpers/cli.js';
import { tempDir } from './helpers/fixtures.js';
import { RawInitiator } from './helpers/iscsi-client.js';

describe('mocopy emu serve --iscsi', function () {
  this.timeout(60_000);
  const t = tempDir();
  after(() => t.cleanup());

  it('prints one JSON ready line, serves, and on SIGTERM logs out, flushes the images and exits 0', async () => {
    const image = join(t.dir, 'serve.mo');
    createMoImage(image, { mediumId: Buffer.from('0a0b0c', 'hex'), capacityBytes: 2 << 20, blockSize: 2048 });
    const p = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'emu', 'serve', '--iscsi', '--listen', '127.0.0.1:0', '--iqn', 'iqn.2026-11.org.mocopy:clitest', '--mo', image, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => p.on('close', (code) => r(code)));
    while (!out.includes('\n')) await new Promise((r) => setTimeout(r, 50));
    const ready = JSON.parse(out.split('\n')[0]!);
    assert.equal(ready.event, 'ready');
    assert.equal(ready.iqn, 'iqn.2026-11.org.mocopy:clitest');
    assert.deepEqual(ready.luns.map((l: { lun: number; kind: string; mediumId: string }) => [l.lun, l.kind, l.mediumId]), [[0, 'mo', '0a0b0c']]);
    const port = Number(ready.portal.split(':').pop());
    const c = await RawInitiator.connect(port);
    c.answerPings = true;
    assert.equal((await c.login({ initiatorName: 'iqn.2026-11.test:cli', targetName: ready.iqn, isid: Buffer.from([0x80, 0, 0, 0, 0, 9]) })).word36 >>> 16, 0);
    // A cached write (no FUA, no SYNCHRONIZE CACHE): only the clean shutdown puts it in the image.
    assert.equal((await c.write10(7, Buffer.alloc(2048, 0x77), 2048)).status, 0);
    p.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.ok(await c.closesWithin(2000), 'the session was closed');
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.at(-1).event, 'stopped');
    const fd = openSync(image, 'r');
    const b = Buffer.alloc(2048);
    readSync(fd, b, 0, 2048, MO_HEADER_SIZE + 7 * 2048);
    closeSync(fd);
    assert.ok(b.every((x) => x === 0x77), 'the write cache reached the image');
  });

  it('refuses a non-loopback address without --allow-remote, a CHAP secret others can read, nothing to serve (exit 2); a missing image (exit 6)', () => {
    const image = join(t.dir, 'r.mo');
    createMoImage(image, { mediumId: Buffer.from('01', 'hex'), capacityBytes: 1 << 20, blockSize: 2048 });
    const remote = mocopy(['emu', 'serve', '--iscsi', '--listen', '0.0.0.0:0', '--mo', image]);
    assert.equal(remote.code, 2);
    assert.match(remote.stderr, /--allow-remote/);
    const secret = join(t.dir, 'chap.secret');
    writeFileSync(secret, 'a-long-enough-secret');
    chmodSync(secret, 0o644);
    const chap = mocopy(['emu', 'serve', '--iscsi', '--listen', '127.0.0.1:0', '--mo', image, '--chap-user', 'u', '--chap-secret-file', secret]);
    assert.equal(chap.code, 2);
    assert.match(chap.stderr, /readable by others/);
    const missing = mocopy(['emu', 'serve', '--iscsi', '--listen', '127.0.0.1:0', '--mo', join(t.dir, 'nope.mo')]);
    assert.equal(missing.code, 6, 'a missing image is malformed input');
    assert.match(missing.stderr, /cannot open image/);
    const nothing = mocopy(['emu', 'serve', '--iscsi', '--listen', '127.0.0.1:0']);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /nothing to serve/);
  });
});
