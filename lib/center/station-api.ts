/**
 * The station API's two authenticated routes (docs/protocol.md):
 *   POST /v1/licenses   body: LicenseRequest  -> License (scheme B sealed under the station's transit key)
 *   GET  /v1/contents                         -> { contents: ContentInfo[] }
 * Checks in order: exact request target, header shapes, MAC under the station's key (an unknown station
 * costs the same and reads the same as a wrong MAC), timestamp window; then, in one ledger transaction,
 * the nonce is spent whatever the outcome and the decision runs in a savepoint of its own.
 */
import type { IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import { MocopyError, RefusedError } from '../errors.js';
import { activeStation, type LicenseCenter, validateLicenseRequest } from './center.js';
import { H, macMatches, requestMac, sealLicenseB, TIMESTAMP_WINDOW_MS } from './http-auth.js';
import type { LedgerTx } from './ledger.js';
import { CenterRefusal, type License } from './types.js';

export const MAX_BODY_BYTES = 16 * 1024;
const NONCE = /^[0-9a-f]{32}$/;
const TIMESTAMP = /^\d{1,16}$/;
const STATION_ID = /^[A-Za-z0-9-]{1,64}$/;
const MAC_HEX = /^[0-9a-f]{64}$/;
/** Stands in for the key of a station the ledger does not know, so both cases cost one MAC. */
const UNKNOWN_STATION_KEY = randomBytes(32);

export class HttpRefusal extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

const STATUS_BY_CODE: Record<string, number> = {
  [CenterRefusal.UNKNOWN_STATION]: 401, [CenterRefusal.BAD_MAC]: 401, [CenterRefusal.UNAUTHORIZED]: 401, [CenterRefusal.STALE_TIMESTAMP]: 401,
  [CenterRefusal.REPLAYED_NONCE]: 401, [CenterRefusal.STATION_REVOKED]: 403, [CenterRefusal.UNKNOWN_CONTENT]: 404,
  [CenterRefusal.SCHEME_NOT_ALLOWED]: 403, [CenterRefusal.BAD_REQUEST]: 400, [CenterRefusal.REQUEST_CONFLICT]: 409,
  [CenterRefusal.BODY_TOO_LARGE]: 413, [CenterRefusal.BAD_HEADERS]: 400, [CenterRefusal.NOT_FOUND]: 404, E_LEDGER_WRITE: 503, E_LEDGER_UNAVAILABLE: 503,
};

/** A refusal as status and JSON body; anything unexpected is a 500 whose words say nothing of the inside. */
export function refusalAnswer(e: unknown): { status: number; code: string; message: string; internal?: string } {
  if (e instanceof HttpRefusal) return { status: e.status, code: e.code, message: e.message };
  if (e instanceof RefusedError || e instanceof MocopyError) return { status: STATUS_BY_CODE[e.code] ?? 400, code: e.code, message: e.message };
  return { status: 500, code: 'E_INTERNAL', message: 'internal error in the license center', internal: (e as Error)?.message ?? String(e) };
}

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      reject(new HttpRefusal(413, CenterRefusal.BODY_TOO_LARGE, `request body over ${MAX_BODY_BYTES} bytes`));
      req.resume();
      return;
    }
    const parts: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > MAX_BODY_BYTES) {
        reject(new HttpRefusal(413, CenterRefusal.BODY_TOO_LARGE, `request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

const HEADER_SHAPES: Array<[string, RegExp, string]> = [
  [H.station, STATION_ID, '1-64 characters A-Z a-z 0-9 -'],
  [H.timestamp, TIMESTAMP, 'milliseconds since 1970 in decimal digits'],
  [H.nonce, NONCE, '32 lowercase hex digits'],
  [H.mac, MAC_HEX, '64 lowercase hex digits'],
];

function checkAuthHeaders(req: IncomingMessage): void {
  for (const [name, shape, what] of HEADER_SHAPES) {
    const v = req.headers[name];
    if (v === undefined) throw new HttpRefusal(400, CenterRefusal.BAD_HEADERS, `missing header ${name}`);
    if (typeof v !== 'string' || !shape.test(v)) throw new HttpRefusal(400, CenterRefusal.BAD_HEADERS, `malformed header ${name}: must be ${what}`);
  }
}

export type StationRoute = 'license' | 'contents';

export function stationRoute(method: string | undefined, path: string): StationRoute | undefined {
  if (path === '/v1/licenses' && method === 'POST') return 'license';
  if (path === '/v1/contents' && method === 'GET') return 'contents';
  return undefined;
}

/** What the log line and the metrics learn of a station request: no key, MAC, nonce or license body. */
export interface StationEntry {
  station?: string;
  auth?: 'unknown-station' | 'bad-mac';
  content?: string;
  medium?: string;
  scheme?: string;
  license?: string;
  /** A license issued and billed by this request (not a stored one answered again). */
  fresh?: boolean;
}

export class StationApi {
  // KU by station ID. A station's key never changes (a new key is a new station), so it may be remembered;
  // whether the station is still active is read inside each request's transaction, never from here.
  private readonly keys = new Map<string, Buffer>();

  constructor(private readonly center: LicenseCenter, private readonly now: () => number) {}

  private async keyOfStation(id: string): Promise<Buffer | undefined> {
    const hit = this.keys.get(id);
    if (hit) return hit;
    const st = await this.center.ledger.station(id);
    if (!st) return undefined;
    if (this.keys.size >= 10_000) this.keys.delete(this.keys.keys().next().value!);
    this.keys.set(id, st.userKey);
    return st.userKey;
  }

  /**
   * Answers one authenticated request. `signer` is set as soon as the request is authenticated: from then on
   * every answer, refusals included, is signed for this station.
   */
  async handle(route: StationRoute, req: IncomingMessage, url: URL, raw: Buffer, entry: StationEntry, signer: { key?: Buffer; stationId?: string }): Promise<unknown> {
    // The MAC covers the path only: a query string would ride along unauthenticated, so none is accepted.
    if (url.search !== '' || (req.url ?? '').includes('?')) throw new HttpRefusal(400, CenterRefusal.BAD_REQUEST, 'the station API takes no query string (it would not be covered by the request MAC)');
    // The MAC is computed over the path as sent: no normalisation ('/v1/./contents', '#x', an absolute URL).
    if (req.url !== url.pathname) throw new HttpRefusal(400, CenterRefusal.BAD_REQUEST, 'the request target must be exactly the endpoint\'s path');
    // Malformed headers are named before any MAC is computed: an integrator learns which field is wrong,
    // and nothing about which stations exist (the station ID's shape is public).
    checkAuthHeaders(req);
    const stationId = req.headers[H.station] as string;
    const ts = req.headers[H.timestamp] as string;
    const nonce = req.headers[H.nonce] as string;
    entry.station = stationId;
    const known = await this.keyOfStation(stationId);
    // An unknown station costs the same MAC computation as a known one and gets the same answer as a
    // wrong MAC: status, code and words reveal nothing about which station names exist.
    const macOk = macMatches(requestMac(known ?? UNKNOWN_STATION_KEY, stationId, req.method ?? '', url.pathname, ts, nonce, raw), req.headers[H.mac] as string);
    if (!known || !macOk) {
      entry.auth = !known ? 'unknown-station' : 'bad-mac'; // for the operator's log only
      throw new HttpRefusal(401, CenterRefusal.UNAUTHORIZED, 'the request is not authenticated (unknown station, wrong station key, or an altered request)');
    }
    signer.key = known;
    signer.stationId = stationId;
    if (Math.abs(this.now() - Number(ts)) > TIMESTAMP_WINDOW_MS) throw new HttpRefusal(401, CenterRefusal.STALE_TIMESTAMP, 'request timestamp outside the accepted window (check the station clock)');
    // From here on the request is authenticated: its nonce is spent whatever the outcome.
    const spendNonce = async (tx: LedgerTx) => {
      if (!(await tx.spendNonce(stationId, nonce, this.now()))) throw new HttpRefusal(401, CenterRefusal.REPLAYED_NONCE, 'this request was seen before (replayed nonce)');
    };
    const ledger = this.center.ledger;
    if (route === 'contents') {
      return ledger.runSpending(spendNonce, async (tx) => {
        // Read in the transaction: a revocation committed by any instance counts at once.
        activeStation(await tx.station(stationId), stationId);
        return { contents: await this.center.listContents(tx) };
      });
    }
    const { license, fresh } = await ledger.runSpending(spendNonce, async (tx) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new HttpRefusal(400, CenterRefusal.BAD_REQUEST, 'body is not JSON');
      }
      const lr = validateLicenseRequest(parsed);
      entry.content = lr.contentId;
      entry.medium = lr.mediumId;
      entry.scheme = lr.scheme;
      return this.center.decide(tx, stationId, lr);
    });
    entry.license = license.licenseId;
    entry.fresh = fresh; // counted only now: the transaction has committed
    return license.scheme === 'b' ? sealLicenseB(known, stationId, license) : (license as License);
  }
}
