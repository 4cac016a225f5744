/**
 * The license center as a service: JSON over HTTP(S), versioned paths, every request authenticated
 * with the station's key, idempotent issuance, group-committed durable ledger writes.
 *   POST /v1/licenses   body: LicenseRequest            -> License (scheme B sealed under the station key)
 *   GET  /v1/contents                                   -> { contents: ContentInfo[] }
 *   GET  /v1/health     (no authentication)             -> { ok, centerId }
 * Errors: { error: { code, message } } with a stable code; never a stack trace.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { MocopyError, RefusedError } from '../errors.js';
import { activeStation, LicenseCenter, validateLicenseRequest } from './center.js';
import type { LedgerTx, OpenLedgerOptions } from './ledger.js';
import { H, macMatches, requestMac, responseMac, sealLicenseB, TIMESTAMP_WINDOW_MS } from './http-auth.js';
import { CenterRefusal, type License } from './types.js';

export const DEFAULT_PORT = 7443;
export const MAX_BODY_BYTES = 16 * 1024;
const NONCE = /^[0-9a-f]{32}$/;
const TIMESTAMP = /^\d{1,16}$/;
const STATION_ID = /^[A-Za-z0-9-]{1,64}$/;
const MAC_HEX = /^[0-9a-f]{64}$/;
/** Stands in for the key of a station the ledger does not know, so both cases cost one MAC. */
const UNKNOWN_STATION_KEY = randomBytes(32);

export interface ServeOptions {
  db: string;
  host?: string;
  port?: number;
  tls?: { cert: string; key: string };
  /** One line per request; default: stderr. */
  log?: (line: string) => void;
  now?: () => number;
  /** Ledger options (group-commit window for SQLite, pool size for PostgreSQL). */
  ledger?: OpenLedgerOptions;
  /**
   * The operators' web console, served under /console/ on the same port (`--no-console` leaves it out).
   * Built from the running center's ledger, so every instance on one ledger shows the same data.
   */
  console?: (center: LicenseCenter) => ConsoleHandler | Promise<ConsoleHandler>;
}

/** Serves every request under /console (the station API never sees them, and they never see station MACs). */
export interface ConsoleHandler {
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  close?(): Promise<void>;
}

export interface RunningCenter {
  url: string;
  port: number;
  center: LicenseCenter;
  close(): Promise<void>;
}

class HttpRefusal extends Error {
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

function readBody(req: IncomingMessage): Promise<Buffer> {
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

/**
 * The request target as a URL, or undefined when it does not parse ('//', '//[': Node's HTTP parser lets them
 * through). Parsed outside the handler's try, a throw here was an unhandled rejection that stopped the center.
 */
function requestUrl(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'http://center');
  } catch {
    return undefined;
  }
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

export async function serveCenter(o: ServeOptions): Promise<RunningCenter> {
  const center = await LicenseCenter.open(o.db, { ...o.ledger, create: false });
  let inFlight = 0;
  const ledger = center.ledger;
  const consoleHandler = o.console ? await o.console(center) : undefined;
  const now = o.now ?? Date.now;
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  let closing = false;
  let idleResolve: (() => void) | undefined;

  // KU by station ID. A station's key never changes (a new key is a new station), so it may be remembered;
  // whether the station is still active is read inside each request's transaction, never from here.
  const keys = new Map<string, Buffer>();
  const keyOfStation = async (id: string): Promise<Buffer | undefined> => {
    const hit = keys.get(id);
    if (hit) return hit;
    const st = await ledger.station(id);
    if (!st) return undefined;
    if (keys.size >= 10_000) keys.delete(keys.keys().next().value!);
    keys.set(id, st.userKey);
    return st.userKey;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const t0 = process.hrtime.bigint();
    const url = requestUrl(req.url);
    const entry: Record<string, unknown> = { method: req.method, path: url?.pathname ?? req.url };
    let status = 200;
    let body: unknown;
    let stationKey: Buffer | undefined;
    let stationId: string | undefined;
    const nonce = String(req.headers[H.nonce] ?? '');
    if (consoleHandler && url && (url.pathname === '/console' || url.pathname.startsWith('/console/'))) {
      entry.route = 'console';
      try {
        await consoleHandler.handle(req, res, url);
      } catch (e) {
        entry.internal = (e as Error)?.message;
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
          res.end('internal error in the console');
        } else res.destroy();
      }
      entry.status = res.statusCode;
      entry.ms = Number(process.hrtime.bigint() - t0) / 1e6;
      log(JSON.stringify({ t: new Date().toISOString(), ...entry }));
      return;
    }
    try {
      if (closing) throw new HttpRefusal(503, 'E_SHUTTING_DOWN', 'the license center is shutting down');
      if (!url) throw new HttpRefusal(400, CenterRefusal.BAD_REQUEST, 'the request target is not a path');
      const raw = await readBody(req);
      if (url.pathname === '/v1/health' && req.method === 'GET') {
        body = { ok: true, centerId: center.centerId };
      } else {
        const route = url.pathname === '/v1/licenses' && req.method === 'POST' ? 'license' : url.pathname === '/v1/contents' && req.method === 'GET' ? 'contents' : undefined;
        if (!route) throw new HttpRefusal(404, CenterRefusal.NOT_FOUND, `no such endpoint: ${req.method} ${url.pathname}`);
        // The MAC covers the path only: a query string would ride along unauthenticated, so none is accepted.
        if (url.search !== '' || (req.url ?? '').includes('?')) throw new HttpRefusal(400, CenterRefusal.BAD_REQUEST, 'the station API takes no query string (it would not be covered by the request MAC)');
        // The MAC is computed over the path as sent: no normalisation ('/v1/./contents', '#x', an absolute URL).
        if (req.url !== url.pathname) throw new HttpRefusal(400, CenterRefusal.BAD_REQUEST, 'the request target must be exactly the endpoint\'s path');
        // Malformed headers are named before any MAC is computed: an integrator learns which field is wrong,
        // and nothing about which stations exist (the station ID's shape is public).
        checkAuthHeaders(req);
        // Authentication: MAC under the station's key, timestamp window, fresh nonce, station active.
        stationId = String(req.headers[H.station] ?? '');
        entry.station = stationId;
        const ts = String(req.headers[H.timestamp] ?? '');
        const known = await keyOfStation(stationId);
        // An unknown station costs the same MAC computation as a known one and gets the same answer as a
        // wrong MAC: status, code and words reveal nothing about which station names exist.
        const key = known ?? UNKNOWN_STATION_KEY;
        const macOk = macMatches(requestMac(key, stationId, req.method ?? '', url.pathname, ts, nonce, raw), req.headers[H.mac] as string | undefined);
        if (!known || !macOk) {
          entry.auth = !known ? 'unknown-station' : 'bad-mac'; // for the operator's log only
          throw new HttpRefusal(401, CenterRefusal.UNAUTHORIZED, 'the request is not authenticated (unknown station, wrong station key, or an altered request)');
        }
        stationKey = known;
        if (Math.abs(now() - Number(ts)) > TIMESTAMP_WINDOW_MS) throw new HttpRefusal(401, CenterRefusal.STALE_TIMESTAMP, 'request timestamp outside the accepted window (check the station clock)');
        // From here on the request is authenticated: its nonce is spent whatever the outcome.
        const spendNonce = async (tx: LedgerTx) => {
          if (!(await tx.spendNonce(stationId!, nonce, now()))) throw new HttpRefusal(401, CenterRefusal.REPLAYED_NONCE, 'this request was seen before (replayed nonce)');
        };
        if (route === 'contents') {
          body = await ledger.runSpending(spendNonce, async (tx) => {
            // Read in the transaction: a revocation committed by any instance counts at once.
            activeStation(await tx.station(stationId!), stationId!);
            return { contents: await center.listContents(tx) };
          });
        } else {
          const license: License = await ledger.runSpending(spendNonce, async (tx) => {
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
            return center.issueIn(tx, stationId!, lr);
          });
          entry.license = license.licenseId;
          body = license.scheme === 'b' ? sealLicenseB(stationKey, stationId, license) : license;
        }
      }
    } catch (e) {
      if (e instanceof HttpRefusal) {
        status = e.status;
        body = { error: { code: e.code, message: e.message } };
      } else if (e instanceof RefusedError || e instanceof MocopyError) {
        status = STATUS_BY_CODE[e.code] ?? 400;
        body = { error: { code: e.code, message: e.message } };
      } else {
        status = 500;
        body = { error: { code: 'E_INTERNAL', message: 'internal error in the license center' } };
        entry.internal = (e as Error)?.message;
      }
    }
    const text = JSON.stringify(body);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
    if (stationKey && stationId && nonce) headers[H.responseMac] = responseMac(stationKey, stationId, status, nonce, text).toString('hex');
    res.writeHead(status, headers);
    res.end(text);
    entry.status = status;
    entry.outcome = status < 300 ? 'ok' : (body as { error: { code: string } }).error.code;
    entry.ms = Number(process.hrtime.bigint() - t0) / 1e6;
    log(JSON.stringify({ t: new Date().toISOString(), ...entry }));
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    handle(req, res).finally(() => {
      inFlight--;
      if (inFlight === 0 && idleResolve) idleResolve();
    });
  };
  const server: Server = o.tls
    ? createHttpsServer({ cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) }, listener)
    : createHttpServer(listener);
  server.requestTimeout = 15_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? DEFAULT_PORT, o.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `${o.tls ? 'https' : 'http'}://${host}:${addr.port}`,
    port: addr.port,
    center,
    async close() {
      if (closing) return;
      closing = true;
      // Stop accepting, let in-flight requests finish, then close the ledger.
      const stopped = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      if (inFlight > 0) await new Promise<void>((r) => (idleResolve = r));
      server.closeAllConnections();
      await stopped;
      await consoleHandler?.close?.();
      await center.close();
    },
  };
}
