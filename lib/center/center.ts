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
import { openLedger, type ContentRow, type Ledger, type LedgerTx, type LicenseRow, type OpenLedgerOptions, type StationRow } from './ledger.js';
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

  /** Opens the center on a ledger spec: a SQLite path or a postgres:// URL. */
  static async open(spec: string, opts: OpenLedgerOptions = {}): Promise<LicenseCenter> {
    return new LicenseCenter(await openLedger(spec, opts));
  }

  get centerId(): string {
    return this.ledger.centerId;
  }

  /** Registers (or updates) a content; returns Ka (= Kd), the key its program is encrypted with on the master. */
  async registerContent(c: { contentId: string; name: string; schemes: Scheme[]; price?: number }): Promise<{ contentKey: Buffer }> {
    validateContentId(c.contentId);
    if (c.schemes.length === 0 || !c.schemes.every(isScheme)) throw new UsageError('schemes must be a non-empty list of a, b');
    await this.ledger.upsertContent({ id: c.contentId, name: c.name, schemes: [...new Set(c.schemes)].sort() as Scheme[], price: c.price ?? 0 });
    return { contentKey: deriveContentKey(this.ledger.masterKey(), c.contentId) };
  }

  /** The contents on offer; inside a transaction, pass it (a SQLite batch would otherwise wait for itself). */
  async listContents(tx?: LedgerTx): Promise<ContentInfo[]> {
    return (await (tx ?? this.ledger).contents()).map(toContentInfo);
  }

  async addStation(name: string): Promise<StationKey> {
    if (!name.trim()) throw new UsageError('a station needs a name');
    const key: StationKey = { stationId: `st-${randomUUID().slice(0, 8)}`, centerId: this.centerId, key: newKey() };
    await this.ledger.addStation(key.stationId, name.trim(), key.key);
    return key;
  }

  async revokeStation(stationId: string): Promise<void> {
    const st = await this.ledger.station(stationId);
    if (!st) throw new RefusedError(CenterRefusal.UNKNOWN_STATION, `no station ${stationId} in ${this.ledger.name}`);
    await this.ledger.revokeStation(stationId);
  }

  /** Checks that a presented KU is this station's, in constant time. */
  async authenticateKey(stationId: string, key: Uint8Array): Promise<void> {
    const st = activeStation(await this.ledger.station(stationId), stationId);
    if (!constantTimeEqual(st.userKey, key)) {
      throw new RefusedError(CenterRefusal.WRONG_STATION_KEY, `the station key does not match station ${stationId} in the ledger`, { hint: 'use the key file written by `mocopy center station add` for this station' });
    }
  }

  /** Issues (or returns the stored) license in a transaction of its own. */
  issue(stationId: string, input: LicenseRequest): Promise<License> {
    const req = validateLicenseRequest(input);
    return this.ledger.run((tx) => this.issueIn(tx, stationId, req));
  }

  /**
   * The decision, inside the caller's transaction: the station is read in it (a revocation committed by any
   * instance counts at once), and the stored license, if any, is answered again without a new bill.
   */
  async issueIn(tx: LedgerTx, stationId: string, input: LicenseRequest): Promise<License> {
    return (await this.decide(tx, stationId, input)).license;
  }

  /** As issueIn, also saying whether this request issued (and billed) the license or found it stored. */
  async decide(tx: LedgerTx, stationId: string, input: LicenseRequest): Promise<{ license: License; fresh: boolean }> {
    const req = validateLicenseRequest(input);
    const got = await tx.lookup({ stationId, requestId: req.requestId, mediumId: req.mediumId, contentId: req.contentId, scheme: req.scheme });
    const st = activeStation(got.station, stationId);
    if (got.byRequest) return { license: sameRequest(got.byRequest, stationId, req), fresh: false };
    if (got.byPair) return { license: got.byPair.response, fresh: false };
    // [S12] the content must be registered and allow the scheme.
    const content = got.content;
    if (!content) throw new RefusedError(CenterRefusal.UNKNOWN_CONTENT, `the license center has no content ${req.contentId}`);
    if (!content.schemes.includes(req.scheme)) throw new RefusedError(CenterRefusal.SCHEME_NOT_ALLOWED, `content ${req.contentId} may not be copied under scheme ${req.scheme.toUpperCase()} (allowed: ${content.schemes.join(', ').toUpperCase()})`);
    const license = this.makeLicense(st.userKey, req);
    const row: LicenseRow = { id: license.licenseId, requestId: req.requestId, stationId, contentId: req.contentId, mediumId: req.mediumId, scheme: req.scheme, response: license, issuedAt: license.issuedAt };
    // The price is the content's at issuance: a later price change leaves this bill as it is.
    const stored = await tx.insertLicense(row, content.price);
    // A concurrent identical request (here or on another instance) won the race: answer with its license.
    return stored.inserted ? { license, fresh: true } : { license: sameRequest(stored.license, stationId, req), fresh: false };
  }

  private makeLicense(userKey: Buffer, req: LicenseRequest): License {
    const mediumId = Buffer.from(req.mediumId, 'hex');
    const base = { licenseId: `lic-${randomUUID()}`, centerId: this.centerId, contentId: req.contentId, mediumId: req.mediumId, issuedAt: new Date().toISOString() };
    const km = this.ledger.masterKey();
    if (req.scheme === 'a') {
      // [S2] CS from (IDk, SIDi) under KEYc; EKU(KEYc); the content key wrapped under KU as well.
      const keyC = deriveCertificationKey(this.ledger.centerSecret(), mediumId, req.contentId);
      const a: LicenseA = {
        scheme: 'a', ...base,
        certificate: certificateCode(keyC, mediumId, req.contentId).toString('hex'),
        wrappedCertificationKey: wrapKey(userKey, keyC).toString('hex'),
        wrappedContentKey: wrapKey(userKey, deriveContentKey(km, req.contentId)).toString('hex'),
      };
      return a;
    }
    // [S13] Ku = F_KM(Mid), Ka = F_KM(DID); [S14] E_Mid(Ku, Ka).
    const b: LicenseB = {
      scheme: 'b', ...base,
      wrappedMediumKey: wrapUnderMedium(mediumId, deriveMediumKey(km, mediumId)).toString('hex'),
      wrappedMasterKey: wrapUnderMedium(mediumId, deriveContentKey(km, req.contentId)).toString('hex'),
    };
    return b;
  }

  close(): Promise<void> {
    return this.ledger.close();
  }
}

function toContentInfo(c: ContentRow): ContentInfo {
  return { contentId: c.id, name: c.name, schemes: c.schemes, price: c.price };
}

/** The station as the center knows it, refusing unknown and revoked ones. */
export function activeStation(st: StationRow | undefined, stationId: string): StationRow {
  if (!st) throw new RefusedError(CenterRefusal.UNKNOWN_STATION, `the license center does not know station ${stationId}`, { hint: 'check the station key file, or register the station with `mocopy center station add`' });
  if (st.status !== 'active') throw new RefusedError(CenterRefusal.STATION_REVOKED, `station ${stationId} has been revoked by the license center`, { hint: 'contact the license center' });
  return st;
}

/** A stored license answers a request with its ID only if the request asks for the same thing. */
function sameRequest(prior: LicenseRow, stationId: string, req: LicenseRequest): License {
  if (prior.requestId === req.requestId && (prior.stationId !== stationId || prior.contentId !== req.contentId || prior.mediumId !== req.mediumId || prior.scheme !== req.scheme)) {
    throw new RefusedError(CenterRefusal.REQUEST_CONFLICT, `request ${req.requestId} was already used for another license`);
  }
  return prior.response;
}
