import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { mocopy } from './helpers/cli.js';
import { makeWorld, type World } from './helpers/fixtures.js';
import { LEDGER_BACKENDS, requirePostgres, worldLedger } from './helpers/postgres.js';

for (const backend of LEDGER_BACKENDS) describe(`mocopy center serve (TLS, graceful stop) and mocopy copy --center [${backend}]`, function () {
  this.timeout(120_000);
  let w: World;
  before(async function () {
    if (backend === 'postgres') requirePostgres(this);
    w = await makeWorld(await worldLedger(backend));
  });
  after(() => w.cleanup());

  it('serves HTTPS, a station copies through it with --center, and SIGTERM stops it cleanly', async () => {
    const cert = join(w.dir, 'cert.pem');
    const key = join(w.dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'center', 'serve', '--db', w.ledger, '--listen', '127.0.0.1:0', '--tls-cert', cert, '--tls-key', key, '--drain-ms', '200'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stdout!.on('data', (d) => (stdout += d));
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr!.on('data', (d) => {
        stderr += d;
        const m = /listening on (https:\/\/\S+)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (c) => reject(new Error(`serve exited ${c}: ${stderr}`)));
    });
    try {
      const health = await new Promise<string>((resolve, reject) => {
        request(url + '/v1/health', { ca: readFileSync(cert) }, (res) => { let b = ''; res.on('data', (c) => (b += c)); res.on('end', () => resolve(b)); }).on('error', reject).end();
      });
      assert.equal(JSON.parse(health).ok, true);
      const disc = w.newDisc('tls.mo', '0f0e0d0c0b0a0908');
      const r = mocopy(['copy', `emu:${w.masterIso}`, `emu:${disc}`, '--content', 'APP-1', '--center', url, '--station-key', w.stationKeyPath, '--scheme', 'b'], { NODE_EXTRA_CA_CERTS: cert });
      assert.equal(r.code, 0, r.stderr);
      const out = join(w.dir, 'tls.out');
      assert.equal(mocopy(['open', `emu:${disc}`, '--content', 'APP-1', '--out', out]).code, 0);
      assert.equal(statSync(out).size, w.programs['APP-1']!.length);
    } finally {
      child.kill('SIGTERM');
    }
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0);
    assert.match(stderr, /SIGTERM: not ready now; serving 200 ms more/);
    // stdout is not a terminal here: JSON lines, a request line per request, lifecycle events.
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.some((l) => l.msg === 'request' && l.path === '/v1/licenses' && l.content === 'APP-1' && l.status === 200 && l.reqId), 'one log line per request');
    assert.deepEqual(lines.filter((l) => l.msg !== 'request').map((l) => l.msg), ['listening', 'draining', 'stopped']);
    assert.ok(!(stdout + stderr).includes(w.station.key.toString('hex')), 'never a key in the log');
  });

  it('an unreachable center: bounded retries, then exit 7 and words', () => {
    const disc = w.newDisc('ref.mo', '01');
    const r = mocopy(['copy', `emu:${w.masterIso}`, `emu:${disc}`, '--content', 'APP-1', '--center', 'http://127.0.0.1:9', '--station-key', w.stationKeyPath]);
    assert.equal(r.code, 7);
    assert.match(r.stderr, /could not be reached/);
  });
});
