/**
 * Test vectors of the station–center protocol (docs/protocol.md), computed by the project's own functions from
 * fixed inputs, so the file is the code's answer and cannot drift from it:
 *   node --import tsx scripts/protocol-vectors.ts           writes docs/vectors/center-protocol.json
 *   node --import tsx scripts/protocol-vectors.ts --check   exits 1 if the committed file differs from the code's answer
 * Every input is derived from a fixed string with SHA-256; nothing random, no clock. Hex is lowercase, strings UTF-8.
 * The keys in here are test keys only: no real station, center or content uses them.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { openLicenseB, requestMac, responseMac, sealLicenseB } from '../lib/center/http-auth.js';
import { kdf } from '../lib/crypto/kdf.js';
import { unwrapKey, wrapKey } from '../lib/crypto/keywrap.js';
import { certificateCode, deriveCertificationKey, deriveContentKey, deriveMediumKey, encodePair, unwrapUnderMedium, wrapUnderMedium } from '../lib/crypto/scheme.js';
import type { LicenseA, LicenseB } from '../lib/domain/index.js';

export const VECTORS_PATH = resolve(import.meta.dirname, '..', 'docs', 'vectors', 'center-protocol.json');

/** The public constant of E_Mid, as docs/protocol.md states it (checked below against wrapUnderMedium). */
export const MID_CONSTANT_TEXT = 'mocopy medium-id binding key v1.';

/** n deterministic bytes named by `name` (SHA-256 chained as needed). */
function fixed(name: string, n = 32): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; Buffer.concat(parts).length < n; i++) parts.push(createHash('sha256').update(`mocopy protocol vectors/${name}/${i}`).digest());
  return Buffer.concat(parts).subarray(0, n);
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const sha256hex = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const utf8 = (s: string) => Buffer.from(s, 'utf8');

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`protocol vectors: ${what} does not hold — docs/protocol.md and the code disagree`);
}

/** [i]32 ‖ label ‖ 00 ‖ context ‖ [L]32 for block i, written out independently of kdf() as the doc states it. */
function kdfBlockInput(i: number, label: string, context: Uint8Array, lengthBits: number): Buffer {
  const be32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b; };
  return Buffer.concat([be32(i), utf8(label), Buffer.from([0]), Buffer.from(context), be32(lengthBits)]);
}

/** The KDF with L in bits, as the vectors and the doc speak of it (kdf() takes bytes). */
function kdfBits(key: Uint8Array, label: string, context: Uint8Array, lengthBits: number): Buffer {
  return kdf(key, label, context, lengthBits / 8);
}

export interface Vectors {
  kdf: Array<{ key: string; label: string; context: string; lengthBits: number; prfInput1: string; output: string }>;
  requestMac: Array<{ stationKey: string; stationId: string; method: string; path: string; timestamp: string; nonce: string; body: string; macKey: string; bodySha256: string; macInput: string; mac: string }>;
  responseMac: Array<{ stationKey: string; stationId: string; status: number; nonce: string; body: string; macKey: string; bodySha256: string; macInput: string; mac: string }>;
  transit: Array<{ stationKey: string; stationId: string; transitKey: string; wrapped: string; unwrapped: string }>;
  certificate: Array<{ centerSecret: string; masterKey: string; stationKey: string; mediumId: string; contentId: string; pairEncoding: string; certificationKey: string; certificate: string; wrappedCertificationKey: string; contentKey: string; wrappedContentKey: string }>;
  mediumKey: Array<{ masterKey: string; mediumId: string; contentId: string; mediumBindingKey: string; mediumKey: string; wrappedMediumKey: string; contentKey: string; wrappedMasterKey: string }>;
}

const STATIONS = [
  { stationId: 'st-0a1b2c3d', key: fixed('station 1') },
  { stationId: 'st-77e0f1a2', key: fixed('station 2') },
  { stationId: 'lab-bench-3', key: fixed('station 3') },
];

const DISCS = [
  { mediumId: Buffer.from('0f0e0d0c0b0a0908', 'hex'), contentId: 'APP-1' },
  { mediumId: Buffer.from('01', 'hex'), contentId: 'game.v2_final' },
  { mediumId: fixed('medium 3', 64), contentId: 'Z' },
];

export function buildVectors(): Vectors {
  const centerSecret = fixed('center secret');
  const km = fixed('master key KM');

  // KDF: AES-256, AES-128 and AES-192 PRF keys; one, two and four output blocks; an empty context; a UTF-8 label.
  const kdfCases: Array<[Buffer, string, Buffer, number]> = [
    [fixed('kdf 1'), 'mocopy/http/request', utf8('st-0a1b2c3d'), 256],
    [fixed('kdf 2', 16), 'example', Buffer.alloc(0), 128],
    [fixed('kdf 3'), 'mocopy/B/Ku', Buffer.from('0f0e0d0c0b0a0908', 'hex'), 512],
    [fixed('kdf 4', 24), 'label é ✓', utf8('ctx'), 200],
  ];
  const kdfVectors = kdfCases.map(([key, label, context, lengthBits]) => ({
    key: hex(key), label, context: hex(context), lengthBits, prfInput1: hex(kdfBlockInput(1, label, context, lengthBits)), output: hex(kdfBits(key, label, context, lengthBits)),
  }));

  // Scheme B key material (center side), then its transit seal for each station.
  const mediumKey = DISCS.map(({ mediumId, contentId }) => {
    const bindingKey = kdf(utf8(MID_CONSTANT_TEXT), 'mocopy/B/Mid', mediumId);
    const ku = deriveMediumKey(km, mediumId);
    const ka = deriveContentKey(km, contentId);
    const eKu = wrapUnderMedium(mediumId, ku);
    const eKa = wrapUnderMedium(mediumId, ka);
    check(unwrapKey(bindingKey, eKu).equals(ku) && unwrapUnderMedium(mediumId, eKa).equals(ka), 'E_Mid = RFC 3394 wrap under KDF(constant, "mocopy/B/Mid", Mid)');
    check(ku.equals(kdf(km, 'mocopy/B/Ku', mediumId)) && ka.equals(kdf(km, 'mocopy/B/Ka', utf8(contentId))), 'Ku and Ka derivations');
    return { masterKey: hex(km), mediumId: hex(mediumId), contentId, mediumBindingKey: hex(bindingKey), mediumKey: hex(ku), wrappedMediumKey: hex(eKu), contentKey: hex(ka), wrappedMasterKey: hex(eKa) };
  });

  const sealedB = STATIONS.map((st, i) => {
    const m = mediumKey[i]!;
    const plain: LicenseB = {
      scheme: 'b', licenseId: `lic-0000000${i}-1111-4222-8333-444444444444`, centerId: 'center-5eed0001', contentId: m.contentId, mediumId: m.mediumId,
      issuedAt: `2026-01-0${i + 1}T12:00:00.000Z`, wrappedMediumKey: m.wrappedMediumKey, wrappedMasterKey: m.wrappedMasterKey,
    };
    const sealed = sealLicenseB(st.key, st.stationId, plain);
    check(JSON.stringify(openLicenseB(st.key, st.stationId, sealed)) === JSON.stringify(plain), 'openLicenseB inverts sealLicenseB');
    return { st, plain, sealed };
  });

  const transit = sealedB.map(({ st, plain, sealed }) => {
    const tk = kdf(st.key, 'mocopy/http/transit', utf8(st.stationId));
    check(unwrapKey(tk, Buffer.from(sealed.wrappedMediumKey, 'hex')).toString('hex') === plain.wrappedMediumKey, 'transit key = KDF(KU, "mocopy/http/transit", station ID)');
    return { stationKey: hex(st.key), stationId: st.stationId, transitKey: hex(tk), wrapped: sealed.wrappedMediumKey, unwrapped: plain.wrappedMediumKey };
  });

  const certificate = DISCS.map(({ mediumId, contentId }, i) => {
    const ku = STATIONS[i]!.key;
    const keyC = deriveCertificationKey(centerSecret, mediumId, contentId);
    const kd = deriveContentKey(km, contentId);
    return {
      centerSecret: hex(centerSecret), masterKey: hex(km), stationKey: hex(ku), mediumId: hex(mediumId), contentId,
      pairEncoding: hex(encodePair(mediumId, contentId)), certificationKey: hex(keyC), certificate: hex(certificateCode(keyC, mediumId, contentId)),
      wrappedCertificationKey: hex(wrapKey(ku, keyC)), contentKey: hex(kd), wrappedContentKey: hex(wrapKey(ku, kd)),
    };
  });

  // Request MACs: a scheme-B license request, a contents listing (empty body), a scheme-A license request.
  const requests = [
    { st: STATIONS[0]!, method: 'POST', path: '/v1/licenses', timestamp: '1767268800000', nonce: fixed('nonce 1', 16).toString('hex'),
      body: JSON.stringify({ requestId: '3f1c9a52-7d4e-4b8a-9c21-5e6f7a8b9c0d', scheme: 'b', contentId: 'APP-1', mediumId: '0f0e0d0c0b0a0908' }) },
    { st: STATIONS[1]!, method: 'GET', path: '/v1/contents', timestamp: '1767268801234', nonce: fixed('nonce 2', 16).toString('hex'), body: '' },
    { st: STATIONS[2]!, method: 'POST', path: '/v1/licenses', timestamp: '1767355199999', nonce: fixed('nonce 3', 16).toString('hex'),
      body: JSON.stringify({ requestId: 'c0ffee00-0000-4000-8000-000000000003', scheme: 'a', contentId: 'Z', mediumId: hex(DISCS[2]!.mediumId) }) },
  ];
  const requestMacs = requests.map(({ st, method, path, timestamp, nonce, body }) => {
    const macInput = `${method}\n${path}\n${timestamp}\n${nonce}\n${sha256hex(utf8(body))}`;
    const macKey = kdf(st.key, 'mocopy/http/request', utf8(st.stationId));
    return {
      stationKey: hex(st.key), stationId: st.stationId, method, path, timestamp, nonce, body,
      macKey: hex(macKey), bodySha256: sha256hex(utf8(body)), macInput, mac: hex(requestMac(st.key, st.stationId, method, path, timestamp, nonce, body)),
    };
  });

  // Response MACs: the scheme-B license answering request 1 (sealed, as it travels), a contents list, a signed refusal,
  // and the scheme-A license answering request 3.
  const licenseA: LicenseA = {
    scheme: 'a', licenseId: 'lic-c0ffee00-aaaa-4bbb-8ccc-dddddddddddd', centerId: 'center-5eed0001', contentId: 'Z', mediumId: certificate[2]!.mediumId,
    issuedAt: '2026-01-02T11:59:59.999Z', certificate: certificate[2]!.certificate, wrappedCertificationKey: certificate[2]!.wrappedCertificationKey, wrappedContentKey: certificate[2]!.wrappedContentKey,
  };
  const responses = [
    { st: STATIONS[0]!, status: 200, nonce: requests[0]!.nonce, body: JSON.stringify(sealedB[0]!.sealed) },
    { st: STATIONS[1]!, status: 200, nonce: requests[1]!.nonce, body: JSON.stringify({ contents: [{ contentId: 'APP-1', name: 'Program APP-1', schemes: ['a', 'b'], price: 1500 }] }) },
    { st: STATIONS[1]!, status: 404, nonce: fixed('nonce 4', 16).toString('hex'), body: JSON.stringify({ error: { code: 'E_UNKNOWN_CONTENT', message: 'the license center has no content NOPE' } }) },
    { st: STATIONS[2]!, status: 200, nonce: requests[2]!.nonce, body: JSON.stringify(licenseA) },
  ];
  const responseMacs = responses.map(({ st, status, nonce, body }) => {
    const macInput = `${status}\n${nonce}\n${sha256hex(utf8(body))}`;
    return {
      stationKey: hex(st.key), stationId: st.stationId, status, nonce, body,
      macKey: hex(kdf(st.key, 'mocopy/http/response', utf8(st.stationId))), bodySha256: sha256hex(utf8(body)), macInput,
      mac: hex(responseMac(st.key, st.stationId, status, nonce, body)),
    };
  });

  return { kdf: kdfVectors, requestMac: requestMacs, responseMac: responseMacs, transit, certificate, mediumKey };
}

export function vectorsText(): string {
  return JSON.stringify(buildVectors(), null, 2) + '\n';
}

function main(): void {
  const text = vectorsText();
  if (process.argv.includes('--check')) {
    let committed = '';
    try {
      committed = readFileSync(VECTORS_PATH, 'utf8');
    } catch {
      process.stderr.write(`protocol-vectors: ${VECTORS_PATH} is missing; run node --import tsx scripts/protocol-vectors.ts\n`);
      process.exit(1);
    }
    if (committed !== text) {
      process.stderr.write(`protocol-vectors: ${VECTORS_PATH} differs from what the code computes; run node --import tsx scripts/protocol-vectors.ts and review the diff\n`);
      process.exit(1);
    }
    process.stdout.write('protocol-vectors: the committed vectors match the code\n');
    return;
  }
  writeFileSync(VECTORS_PATH, text);
  process.stdout.write(`protocol-vectors: wrote ${VECTORS_PATH}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) main();
