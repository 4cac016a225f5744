/**
 * The license center's logic over its ledger [patent: central site 5 / software license center]:
 * scheme A (FIG. 4 left half) and scheme B (FIG. 8), with idempotent issuance — the same request
 * again returns the stored license and bills nothing more.
 */
import { randomUUID } from 'node:crypto';
import { RefusedError, UsageError } from '../errors.js';
import { constantTimeEqual } from '../crypto/compare.js';
import { wrapKey } from '../crypto/keywrap.js';
import { certificateCode, deriveCertificationKey, deriveContentKey, deriveMediumKey, newKey, wrapUnderMedium } from '../crypto/scheme.js';
import { isContentId, isMediumIdHex, isScheme, validateContentId, type License, type LicenseA, type LicenseB, type LicenseRequest, type Scheme, type StationKey } from '../domain/index.js';
import { Ledger, type LicenseRow } from './ledger.js';
import { CenterRefusal, type ContentInfo } from './types.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function validateLicenseRequest(req: unknown): LicenseRequest {
  const r = req as Record<string, unknown>;
  const bad = (m: string) => new RefusedError(CenterRefusal.BAD_REQUEST, `bad license request: ${m}`);
  if (!r || typeof r !== 'object') throw bad('not an object');
  if (typeof r.requestId !== 'string' || !UUID.test(r.requestId)) throw bad('requestId must be a lowercase UUID');
  if (!isScheme(r.scheme)) throw bad('scheme must be "a" or "b"');
  if (!isContentId(r.contentId)) throw bad('contentId must be 1-64 characters A-Z a-z 0-9 . _ - starting with a letter or digit');
  if (!isMediumIdHex(r.mediumId)) throw bad('mediumId must be 1..64 bytes of lowercase hex');
  return { requestId: r.requestId, scheme: r.scheme, contentId: r.contentId, mediumId: r.mediumId };
}

export class LicenseCenter {
  constructor(readonly ledger: Ledger) {}

  static open(path: string, opts: { create?: boolean } = {}): LicenseCenter {
    return new LicenseCenter(Ledger.open(path, opts));
  }

  get centerId(): string {
    return this.ledger.centerId;
  }

  /** Registers (or updates) a content; returns Ka (= Kd), the key its program is encrypted with on the master. */
  registerContent(c: { contentId: string; name: string; schemes: Scheme[]; price?: number }): { contentKey: Buffer } {
    validateContentId(c.contentId);
    if (c.schemes.length === 0 || !c.schemes.every(isScheme)) throw new UsageError('schemes must be a non-empty list of a, b');
    this.ledger.upsertContent({ id: c.contentId, name: c.name, schemes: [...new Set(c.schemes)].sort() as Scheme[], price: c.price ?? 0 });
    return { contentKey: deriveContentKey(this.ledger.masterKey(), c.contentId) };
  }

  listContents(): ContentInfo[] {
    return this.ledger.contents().map((c) => ({ contentId: c.id, name: c.name, schemes: c.schemes, price: c.price }));
  }

  addStation(name: string): StationKey {
    if (!name.trim()) throw new UsageError('a station needs a name');
    const key: StationKey = { stationId: `st-${randomUUID().slice(0, 8)}`, centerId: this.centerId, key: newKey() };
    this.ledger.addStation(key.stationId, name.trim(), key.key);
    return key;
  }

  revokeStation(stationId: string): void {
    const st = this.ledger.station(stationId);
    if (!st) throw new RefusedError(CenterRefusal.UNKNOWN_STATION, `no station ${stationId} in ${this.ledger.path}`);
    this.ledger.revokeStation(stationId);
  }

  /** The station as the center knows it, refusing unknown and revoked ones. */
  activeStation(stationId: string) {
    const st = this.ledger.station(stationId);
    if (!st) throw new RefusedError(CenterRefusal.UNKNOWN_STATION, `the license center does not know station ${stationId}`, { hint: 'check the station key file, or register the station with `mocopy center station add`' });
    if (st.status !== 'active') throw new RefusedError(CenterRefusal.STATION_REVOKED, `station ${stationId} has been revoked by the license center`, { hint: 'contact the license center' });
    return st;
  }

  /** Checks that a presented KU is this station's, in constant time. */
  authenticateKey(stationId: string, key: Uint8Array): void {
    const st = this.activeStation(stationId);
    if (!constantTimeEqual(st.userKey, key)) {
      throw new RefusedError(CenterRefusal.WRONG_STATION_KEY, `the station key does not match station ${stationId} in the ledger`, { hint: 'use the key file written by `mocopy center station add` for this station' });
    }
  }

  issue(stationId: string, input: LicenseRequest): License {
    const req = validateLicenseRequest(input);
    const st = this.activeStation(stationId);
    const prior = this.ledger.licenseByRequest(req.requestId);
    if (prior) {
      if (prior.stationId !== stationId || prior.contentId !== req.contentId || prior.mediumId !== req.mediumId || prior.scheme !== req.scheme) {
        throw new RefusedError(CenterRefusal.REQUEST_CONFLICT, `request ${req.requestId} was already used for another license`);
      }
      return prior.response;
    }
    const same = this.ledger.licenseByPair(stationId, req.mediumId, req.contentId, req.scheme);
    if (same) return same.response;
    // [S12] the content must be registered and allow the scheme.
    const content = this.ledger.content(req.contentId);
    if (!content) throw new RefusedError(CenterRefusal.UNKNOWN_CONTENT, `the license center has no content ${req.contentId}`);
    if (!content.schemes.includes(req.scheme)) throw new RefusedError(CenterRefusal.SCHEME_NOT_ALLOWED, `content ${req.contentId} may not be copied under scheme ${req.scheme.toUpperCase()} (allowed: ${content.schemes.join(', ').toUpperCase()})`);
    const mediumId = Buffer.from(req.mediumId, 'hex');
    const base = { licenseId: `lic-${randomUUID()}`, centerId: this.centerId, contentId: req.contentId, mediumId: req.mediumId, issuedAt: new Date().toISOString() };
    const km = this.ledger.masterKey();
    let license: License;
    if (req.scheme === 'a') {
      // [S2] CS from (IDk, SIDi) under KEYc; EKU(KEYc); the content key wrapped under KU as well.
      const keyC = deriveCertificationKey(this.ledger.centerSecret(), mediumId, req.contentId);
      const a: LicenseA = {
        scheme: 'a', ...base,
        certificate: certificateCode(keyC, mediumId, req.contentId).toString('hex'),
        wrappedCertificationKey: wrapKey(st.userKey, keyC).toString('hex'),
        wrappedContentKey: wrapKey(st.userKey, deriveContentKey(km, req.contentId)).toString('hex'),
      };
      license = a;
    } else {
      // [S13] Ku = F_KM(Mid), Ka = F_KM(DID); [S14] E_Mid(Ku, Ka).
      const b: LicenseB = {
        scheme: 'b', ...base,
        wrappedMediumKey: wrapUnderMedium(mediumId, deriveMediumKey(km, mediumId)).toString('hex'),
        wrappedMasterKey: wrapUnderMedium(mediumId, deriveContentKey(km, req.contentId)).toString('hex'),
      };
      license = b;
    }
    const row: LicenseRow = { id: license.licenseId, requestId: req.requestId, stationId, contentId: req.contentId, mediumId: req.mediumId, scheme: req.scheme, response: license, issuedAt: license.issuedAt };
    try {
      this.ledger.recordLicense(row, content.price);
    } catch (e) {
      // A concurrent identical request won the race: answer with its license (billed once).
      const again = this.ledger.licenseByRequest(req.requestId) ?? this.ledger.licenseByPair(stationId, req.mediumId, req.contentId, req.scheme);
      if (again) return again.response;
      throw e;
    }
    return license;
  }

  close(): void {
    this.ledger.close();
  }
}
