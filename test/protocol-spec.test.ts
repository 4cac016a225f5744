/**
 * The published protocol (docs/protocol.md, issue 20): the vectors file is the code's answer, the spec names every
 * header, field and code the code has, and a client written from the spec alone (clients/python) passes the
 * vectors and gets licenses for both schemes from a live center.
 */
import { strict as assert } from 'node:assert';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { H, openLicenseB, requestMac, responseMac, sealLicenseB } from '../lib/center/http-auth.js';
import { HttpCenterClient } from '../lib/center/http-client.js';
import { serveCenter, type RunningCenter } from '../lib/center/server.js';
import { CenterRefusal } from '../lib/center/types.js';
import { kdf } from '../lib/crypto/kdf.js';
import { unwrapKey, wrapKey } from '../lib/crypto/keywrap.js';
import { certificateCode, deriveCertificationKey, deriveContentKey, deriveMediumKey, encodePair, unwrapUnderMedium, wrapUnderMedium } from '../lib/crypto/scheme.js';
import type { LicenseA, LicenseB } from '../lib/domain/index.js';
import { buildVectors, VECTORS_PATH, type Vectors } from '../scripts/protocol-vectors.js';
import { makeWorld, privateFile, type World } from './helpers/fixtures.js';
import { requirePythonModule } from './helpers/tools.js';

const ROOT = resolve(import.meta.dirname, '..');
const CLIENT = join(ROOT, 'clients', 'python', 'mocopy_station.py');
const doc = (name: string) => readFileSync(join(ROOT, 'docs', name), 'utf8');
const h = (s: string) => Buffer.from(s, 'hex');

/** The required members of each section (more, such as intermediate values, are allowed). */
const SHAPE: Record<keyof Vectors, string[]> = {
  kdf: ['key', 'label', 'context', 'lengthBits', 'output'],
  requestMac: ['stationKey', 'stationId', 'method', 'path', 'timestamp', 'nonce', 'body', 'mac'],
  responseMac: ['stationKey', 'stationId', 'status', 'nonce', 'body', 'mac'],
  transit: ['stationKey', 'stationId', 'wrapped', 'unwrapped'],
  certificate: ['centerSecret', 'stationKey', 'mediumId', 'contentId', 'pairEncoding', 'certificationKey', 'certificate', 'wrappedCertificationKey'],
  mediumKey: ['masterKey', 'mediumId', 'contentId', 'mediumBindingKey', 'mediumKey', 'wrappedMediumKey', 'contentKey', 'wrappedMasterKey'],
};
/** Members that are strings of text, not hex. */
const TEXT = new Set(['label', 'stationId', 'method', 'path', 'timestamp', 'body', 'contentId', 'macInput']);

function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    // Asynchronous on purpose: the center under test runs in this process's event loop.
    execFile(cmd, args, { cwd: ROOT, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** The fields an interface of lib/domain/license.ts declares, read from its source. */
function interfaceFields(name: string): string[] {
  const src = readFileSync(join(ROOT, 'lib', 'domain', 'license.ts'), 'utf8');
  const m = new RegExp(`export interface ${name} \\{([\\s\\S]*?)\\n\\}`).exec(src);
  assert.ok(m, `interface ${name} in lib/domain/license.ts`);
  return [...m[1]!.matchAll(/^\s+(\w+)\??:/gm)].map((x) => x[1]!);
}

describe('the published station–center protocol (docs/protocol.md, vectors, second client)', function () {
  this.timeout(120_000);
  const committed = JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as Vectors;

  it('the committed vectors are what the code computes, in the published shape', () => {
    assert.equal(readFileSync(VECTORS_PATH, 'utf8'), JSON.stringify(buildVectors(), null, 2) + '\n', 'run node --import tsx scripts/protocol-vectors.ts');
    for (const [section, members] of Object.entries(SHAPE) as Array<[keyof Vectors, string[]]>) {
      const cases = committed[section] as unknown as Array<Record<string, unknown>>;
      assert.ok(cases.length >= 3, `${section}: at least three cases`);
      for (const [i, c] of cases.entries()) {
        for (const m of members) assert.ok(m in c, `${section}[${i}] has ${m}`);
        for (const [k, v] of Object.entries(c)) {
          if (typeof v === 'string' && !TEXT.has(k)) assert.match(v, /^(?:[0-9a-f]{2})*$/, `${section}[${i}].${k} is lowercase hex`);
        }
      }
    }
  });

  it('the generator\'s --check mode agrees (and is what CI can run on its own)', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/protocol-vectors.ts', '--check'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /match the code/);
  });

  it('every vector holds when recomputed case by case with the library functions', () => {
    for (const c of committed.kdf) {
      assert.equal(c.lengthBits % 8, 0);
      assert.equal(kdf(h(c.key), c.label, h(c.context), c.lengthBits / 8).toString('hex'), c.output, `kdf ${c.label}`);
    }
    const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
    for (const c of committed.requestMac) {
      assert.equal(requestMac(h(c.stationKey), c.stationId, c.method, c.path, c.timestamp, c.nonce, c.body).toString('hex'), c.mac);
      assert.equal(c.macInput, [c.method, c.path, c.timestamp, c.nonce, sha(c.body)].join('\n'));
      assert.equal(c.macKey, kdf(h(c.stationKey), 'mocopy/http/request', Buffer.from(c.stationId, 'utf8')).toString('hex'));
    }
    for (const c of committed.responseMac) {
      assert.equal(responseMac(h(c.stationKey), c.stationId, c.status, c.nonce, c.body).toString('hex'), c.mac);
      assert.equal(c.macInput, [String(c.status), c.nonce, sha(c.body)].join('\n'));
    }
    for (const c of committed.transit) {
      const l = { scheme: 'b', wrappedMediumKey: c.wrapped, wrappedMasterKey: c.wrapped } as LicenseB;
      assert.equal(openLicenseB(h(c.stationKey), c.stationId, l).wrappedMediumKey, c.unwrapped);
      assert.equal(sealLicenseB(h(c.stationKey), c.stationId, { ...l, wrappedMediumKey: c.unwrapped, wrappedMasterKey: c.unwrapped }).wrappedMasterKey, c.wrapped);
      assert.equal(h(c.wrapped).length, 48);
      assert.equal(h(c.unwrapped).length, 40);
    }
    for (const c of committed.certificate) {
      const mid = h(c.mediumId);
      assert.equal(encodePair(mid, c.contentId).toString('hex'), c.pairEncoding);
      const keyC = deriveCertificationKey(h(c.centerSecret), mid, c.contentId);
      assert.equal(keyC.toString('hex'), c.certificationKey);
      assert.equal(certificateCode(keyC, mid, c.contentId).toString('hex'), c.certificate);
      assert.equal(unwrapKey(h(c.stationKey), h(c.wrappedCertificationKey)).toString('hex'), c.certificationKey);
      assert.equal(deriveContentKey(h(c.masterKey), c.contentId).toString('hex'), c.contentKey);
      assert.equal(wrapKey(h(c.stationKey), h(c.contentKey)).toString('hex'), c.wrappedContentKey);
    }
    for (const c of committed.mediumKey) {
      const mid = h(c.mediumId);
      assert.equal(deriveMediumKey(h(c.masterKey), mid).toString('hex'), c.mediumKey);
      assert.equal(deriveContentKey(h(c.masterKey), c.contentId).toString('hex'), c.contentKey);
      assert.equal(wrapUnderMedium(mid, h(c.mediumKey)).toString('hex'), c.wrappedMediumKey);
      assert.equal(unwrapUnderMedium(mid, h(c.wrappedMasterKey)).toString('hex'), c.contentKey);
    }
  });

  it('docs/protocol.md names every header, the key file format, every license field and every refusal code', () => {
    const spec = doc('protocol.md');
    const missing: string[] = [];
    const need = (what: string, token: string) => { if (!spec.includes(token)) missing.push(`${what} ${token}`); };
    for (const name of Object.values(H)) need('header', `\`${name}\``);
    need('key file format', '`mocopy-station-key`');
    for (const f of ['format', 'version', 'stationId', 'centerId', 'key']) need('key file field', `\`${f}\``);
    for (const i of ['LicenseA', 'LicenseB', 'LicenseRequest']) for (const f of interfaceFields(i)) need(`${i} field`, `"${f}"`);
    for (const i of ['LicenseA', 'LicenseB']) for (const f of interfaceFields(i)) need(`${i} field`, `\`${f}\``);
    for (const code of Object.values(CenterRefusal)) need('refusal code', `\`${code}\``);
    for (const section of Object.keys(SHAPE)) need('vectors section', `\`${section}\``);
    assert.deepEqual(missing, []);
  });

  it('the examples in docs/protocol.md are the vectors\' values, and its E_Mid constant is the code\'s', () => {
    const spec = doc('protocol.md');
    const vectorsText = readFileSync(VECTORS_PATH, 'utf8');
    const cMid = /C_Mid\s+= UTF-8\("([^"]+)"\)\s+the 32 bytes ([0-9a-f]{64})/.exec(spec);
    assert.ok(cMid, 'the constant behind E_Mid is stated with its bytes');
    assert.equal(Buffer.from(cMid[1]!, 'utf8').toString('hex'), cMid[2]);
    for (const c of committed.mediumKey) {
      const bindingKey = kdf(Buffer.from(cMid[1]!, 'utf8'), 'mocopy/B/Mid', h(c.mediumId));
      assert.equal(unwrapKey(bindingKey, h(c.wrappedMediumKey)).toString('hex'), c.mediumKey, 'E_Mid as documented opens what the code wraps');
    }
    const hexes = [...spec.matchAll(/\b[0-9a-f]{32,}\b/g)].map((m) => m[0]).filter((x) => x !== cMid[2]);
    assert.ok(hexes.length >= 15, 'worked examples with intermediate values');
    assert.deepEqual(hexes.filter((x) => !vectorsText.includes(x)), [], 'every value in the doc is in the vectors');
  });

  it('docs/center.md links to the spec and gives the transit key its context; disc-layout gives E_Mid(Ku) its lengths', () => {
    const center = doc('center.md');
    assert.match(center, /\]\(protocol\.md\)/);
    assert.doesNotMatch(center, /KDF\(KU, "mocopy\/http\/transit"\)/);
    assert.match(center, /KDF\(KU, "mocopy\/http\/transit",\s+station ID\)/);
    const layout = doc('disc-layout.md');
    assert.doesNotMatch(layout, /\(40\), stored as received/);
    assert.match(layout, /E_Mid\(Ku\) \(40: from an HTTP center it arrives as 48/);
  });

  it('the Python client shares no code with mocopy and uses only the standard library and cryptography', () => {
    const src = readFileSync(CLIENT, 'utf8');
    const imports = [...src.matchAll(/^\s*(?:import\s+([\w.]+)|from\s+([\w.]+)\s+import)/gm)].map((m) => (m[1] ?? m[2])!.split('.')[0]!);
    const allowed = new Set(['argparse', 'hashlib', 'hmac', 'http', 'json', 'os', 're', 'secrets', 'ssl', 'stat', 'struct', 'sys', 'time', 'urllib', 'uuid', 'cryptography']);
    assert.deepEqual(imports.filter((m) => !allowed.has(m)), []);
    assert.doesNotMatch(src, /subprocess|os\.system|node|tsx|dist\/|lib\//, 'no shelling out to, or reading of, the project');
  });

  describe('the Python client (clients/python/mocopy_station.py)', function () {
    let python: string;
    let w: World;
    let center: RunningCenter;
    const MID_A = '0a1b2c3d4e5f6071';
    const MID_B = 'f00dfeedc0ffee0123456789abcdef';

    before(async function () {
      python = requirePythonModule(this, 'cryptography', 'python3-cryptography');
      w = await makeWorld({ programs: { 'APP-1': { size: 3000 }, 'ONLY-A': { size: 3000, schemes: ['a'] } } });
      center = await serveCenter({ db: w.ledger, port: 0, log: () => {} });
    });
    after(async () => {
      await center?.close();
      w?.cleanup();
    });

    const client = (args: string[]) => run(python, [CLIENT, ...args]);
    const license = (scheme: 'a' | 'b', content: string, mid: string, extra: string[] = [], keyFile = w.stationKeyPath) =>
      client(['--center', center.url, '--key-file', keyFile, '--content', content, '--medium-id', mid, '--scheme', scheme, ...extra]);

    it('passes its self-test against the vectors', async () => {
      const r = await client(['--self-test', VECTORS_PATH]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /self-test passed: \d+ vectors/);
    });

    it('scheme A from a live center: the license verifies, and the certificate checks against the medium ID', async () => {
      const r = await license('a', 'APP-1', MID_A);
      assert.equal(r.code, 0, r.stderr);
      const l = JSON.parse(r.stdout) as LicenseA;
      assert.equal(l.scheme, 'a');
      assert.equal(l.contentId, 'APP-1');
      assert.equal(l.mediumId, MID_A);
      assert.match(r.stderr, /CS' = AES-CMAC\(KEYc, enc\(IDk, SIDi\)\) equals the certificate/);
      // The same check with mocopy's functions: the two implementations agree on what the license means.
      const keyC = unwrapKey(w.station.key, h(l.wrappedCertificationKey));
      assert.equal(certificateCode(keyC, h(MID_A), 'APP-1').toString('hex'), l.certificate);
      assert.ok(!r.stdout.includes(w.station.key.toString('hex')) && !r.stderr.includes(w.station.key.toString('hex')), 'KU is never printed');
    });

    it('scheme B from a live center: transit seal removed, E_Mid(Ku) and E_Mid(Ka) open with the medium ID, same license as mocopy\'s client', async () => {
      const requestId = '5b0e7c1a-2d3f-4e5a-8b6c-7d8e9f0a1b2c';
      const r = await license('b', 'APP-1', MID_B, ['--request-id', requestId]);
      assert.equal(r.code, 0, r.stderr);
      const l = JSON.parse(r.stdout) as LicenseB;
      assert.equal(l.scheme, 'b');
      assert.equal(h(l.wrappedMediumKey).length, 40, 'E_Mid(Ku) as the disc stores it');
      assert.equal(unwrapUnderMedium(h(MID_B), h(l.wrappedMediumKey)).length, 32);
      assert.equal(unwrapUnderMedium(h(MID_B), h(l.wrappedMasterKey)).length, 32);
      // mocopy's own client, same request ID: the stored license again, opened to the same bytes.
      const ts = new HttpCenterClient(center.url, w.station, { attempts: 1 });
      const again = await ts.requestLicense({ requestId, scheme: 'b', contentId: 'APP-1', mediumId: MID_B });
      assert.deepEqual(again, l);
    });

    it('a refusal: unknown content exits non-zero with the center\'s code (signed); a scheme the content does not allow likewise', async () => {
      const unknown = await license('a', 'NO-SUCH-APP', MID_A);
      assert.equal(unknown.code, 5);
      assert.equal(unknown.stdout, '');
      assert.match(unknown.stderr, /^mocopy_station: E_UNKNOWN_CONTENT: the license center refused \(HTTP 404, signed\)/);
      const scheme = await license('b', 'ONLY-A', MID_A);
      assert.equal(scheme.code, 5);
      assert.match(scheme.stderr, /E_SCHEME_NOT_ALLOWED: the license center refused \(HTTP 403, signed\)/);
    });

    it('a wrong station key is E_UNAUTHORIZED, unsigned; a key file others can read is refused before anything is sent', async () => {
      const wrong = join(w.dir, 'wrong.key');
      privateFile(wrong, JSON.stringify({ format: 'mocopy-station-key', version: 1, stationId: w.station.stationId, centerId: w.station.centerId, key: 'ab'.repeat(32) }));
      const r = await license('a', 'APP-1', MID_A, [], wrong);
      assert.equal(r.code, 5);
      assert.match(r.stderr, /E_UNAUTHORIZED: the license center refused \(HTTP 401, unsigned\)/);
      chmodSync(wrong, 0o644);
      const open = await license('a', 'APP-1', MID_A, [], wrong);
      assert.equal(open.code, 2);
      assert.match(open.stderr, /E_STATION_KEY: .*readable by other users/);
    });

    it('an unreachable center: exit 7', async () => {
      const r = await client(['--center', 'http://127.0.0.1:9', '--key-file', w.stationKeyPath, '--content', 'APP-1', '--medium-id', MID_A, '--scheme', 'a', '--attempts', '1']);
      assert.equal(r.code, 7);
      assert.match(r.stderr, /E_CENTER_UNAVAILABLE/);
    });
  });
});
