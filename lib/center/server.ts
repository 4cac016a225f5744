/**
 * The license center as a service: JSON over HTTP(S), versioned paths, the station API (station-api.ts),
 * and what operators run it with (docs/operations.md):
 *   GET /v1/health   liveness: 200 while the process runs          -> { ok, centerId }
 *   GET /v1/ready    readiness: 200 while the ledger answers within 1 s and the instance is not draining,
 *                    else 503 with the reason                       -> { ready, reason? }
 *   GET /metrics     Prometheus text format (here, or on --metrics-listen)
 *   /console/…       the operators' console, when one is given
 * Every answer carries `x-request-id`, also in the request's log line. Errors: { error: { code, message } }.
 * Drain (SIGTERM): not ready at once, serving for `drainMs`, then no new connections, every request in
 * flight answered (the group commit flushed), idle keep-alive connections closed.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { LicenseCenter } from './center.js';
import { H, responseMac } from './http-auth.js';
import { isPostgresUrl, type OpenLedgerOptions } from './ledger.js';
import { createCenterLog, flushCenterLog, type LogFormat, type LogLevel } from './log.js';
import type { CenterMetrics } from './metrics.js';
import { HttpRefusal, readBody, refusalAnswer, StationApi, stationRoute, type StationEntry } from './station-api.js';
import { CenterRefusal } from './types.js';

export { MAX_BODY_BYTES } from './station-api.js';
export const DEFAULT_PORT = 7443;
/** How long /v1/ready waits for the ledger's trivial query. */
const READY_TIMEOUT_MS = 1000;
/** How often the instance checks its ledger on its own (readiness gauge, database lost/regained events). */
const WATCH_MS = 1000;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export interface ServeOptions {
  db: string;
  host?: string;
  port?: number;
  tls?: { cert: string; key: string };
  /** Where log lines go (one complete line per call); default `logTo`. */
  log?: (line: string) => void;
  /** A file descriptor or path for log lines; default 1 (stdout). */
  logTo?: number | string;
  logFormat?: LogFormat;
  logLevel?: LogLevel;
  /** Serve /metrics here instead of on the service port (the recommended deployment). */
  metricsListen?: { host: string; port: number };
  /** false: no /metrics at all (the benchmark's baseline). Default true. */
  metrics?: boolean;
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
  /** Where /metrics is served (the service URL unless metricsListen was given); undefined with metrics off. */
  metricsUrl: string | undefined;
  center: LicenseCenter;
  log: Logger;
  /** Not ready at once; keeps serving `drainMs`, then stops as `close()` does. */
  drain(drainMs: number): Promise<void>;
  /** Stops accepting, answers every request in flight, closes the ledger. `force`: cut connections now. */
  close(opts?: { force?: boolean }): Promise<void>;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms); })]).finally(() => clearTimeout(timer));
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server.address() as AddressInfo));
  });
}

const urlOf = (scheme: string, a: AddressInfo) => `${scheme}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;

export async function serveCenter(o: ServeOptions): Promise<RunningCenter> {
  const log = await createCenterLog({ ...(o.logFormat ? { format: o.logFormat } : o.log ? { format: 'json' } : {}), ...(o.logLevel ? { level: o.logLevel } : {}), ...(o.log ? { sink: o.log } : {}), ...(o.logTo !== undefined ? { to: o.logTo } : {}) });
  // prom-client is loaded by the service only (the station's commands import this module too).
  const metrics: CenterMetrics | undefined = o.metrics === false ? undefined : new (await import('./metrics.js')).CenterMetrics();
  const observer = metrics && { commit: (s: number, n: number) => metrics.commit(s, n, !isPostgresUrl(o.db)) };
  const center = await LicenseCenter.open(o.db, { ...o.ledger, create: false, ...(observer ? { observer } : {}) });
  const ledger = center.ledger;
  const consoleHandler = o.console ? await o.console(center) : undefined;
  const api = new StationApi(center, o.now ?? Date.now);
  let inFlight = 0;
  let draining = false;
  let closing = false;
  let idleResolve: (() => void) | undefined;

  // The ledger's state as last seen: events on each change, the readiness gauge always.
  let dbUp = true;
  const ping = () => withTimeout(ledger.ping(), READY_TIMEOUT_MS, 'the ledger');
  const sawLedger = (up: boolean, error?: unknown) => {
    if (up !== dbUp) {
      dbUp = up;
      if (up) log.info({ ledger: ledger.name }, 'database regained');
      else log.error({ ledger: ledger.name, error: (error as Error)?.message }, 'database lost');
    }
    metrics?.ready(dbUp && !draining);
  };
  const watch = setInterval(() => { ping().then(() => sawLedger(true), (e) => sawLedger(false, e)); }, WATCH_MS);
  watch.unref();
  metrics?.ready(true);

  const answerJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
    res.end(text);
    return text;
  };

  const serveMetrics = async (res: ServerResponse) => {
    const m = await metrics!.text();
    res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-store' });
    res.end(m.body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const t0 = process.hrtime.bigint();
    const given = req.headers['x-request-id'];
    // A load balancer's request ID is kept when it is a plain token; otherwise the center makes one.
    const reqId = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader('x-request-id', reqId);
    if (draining) res.setHeader('connection', 'close'); // keep-alive clients move to another instance
    let url: URL | undefined;
    try {
      url = new URL(req.url ?? '/', 'http://center');
    } catch {
      url = undefined; // '//', '//[': Node's parser lets them through
    }
    const path = url?.pathname ?? String(req.url);
    const entry: StationEntry & { route?: string; code?: string; internal?: string } = {};
    let status = 200;
    try {
      if (url && consoleHandler && (path === '/console' || path.startsWith('/console/'))) {
        entry.route = 'console';
        await consoleHandler.handle(req, res, url);
        status = res.statusCode;
        return;
      }
      if (url && path === '/metrics' && req.method === 'GET' && metrics && !o.metricsListen) {
        entry.route = 'metrics';
        await serveMetrics(res);
        return;
      }
      if (closing) throw new HttpRefusal(503, 'E_SHUTTING_DOWN', 'the license center is shutting down');
      if (!url) throw new HttpRefusal(400, CenterRefusal.BAD_REQUEST, 'the request target is not a path');
      const raw = await readBody(req);
      if (path === '/v1/health' && req.method === 'GET') {
        entry.route = 'health';
        answerJson(res, 200, { ok: true, centerId: center.centerId });
        return;
      }
      if (path === '/v1/ready' && req.method === 'GET') {
        entry.route = 'ready';
        let reason: string | undefined = draining ? 'draining' : undefined;
        if (!reason) {
          try {
            await ping();
            sawLedger(true);
          } catch (e) {
            sawLedger(false, e);
            reason = `ledger: ${(e as Error).message}`;
          }
        }
        status = reason ? 503 : 200;
        answerJson(res, status, reason ? { ready: false, reason } : { ready: true });
        return;
      }
      const route = stationRoute(req.method, path);
      if (!route) throw new HttpRefusal(404, CenterRefusal.NOT_FOUND, `no such endpoint: ${req.method} ${path}`);
      entry.route = route;
      const signer: { key?: Buffer; stationId?: string } = {};
      const nonce = String(req.headers[H.nonce] ?? '');
      let body: unknown;
      try {
        body = await api.handle(route, req, url, raw, entry, signer);
        if (route === 'license') sawLedger(true);
      } catch (e) {
        const a = refusalAnswer(e);
        status = a.status;
        entry.code = a.code;
        if (a.internal) entry.internal = a.internal;
        if (a.code === 'E_LEDGER_UNAVAILABLE') sawLedger(false, e);
        body = { error: { code: a.code, message: a.message } };
      }
      const text = JSON.stringify(body);
      // Signed once the request is authenticated, refusals included (docs/protocol.md).
      const mac = signer.key && signer.stationId ? { [H.responseMac]: responseMac(signer.key, signer.stationId, status, nonce, text).toString('hex') } : {};
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...mac });
      res.end(text);
    } catch (e) {
      const a = refusalAnswer(e);
      status = a.status;
      entry.code = a.code;
      if (a.internal) entry.internal = a.internal;
      if (!res.headersSent) answerJson(res, status, { error: { code: a.code, message: a.message } });
      else res.destroy();
    } finally {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const route = entry.route ?? 'other';
      if (status === 200 && entry.route === 'console') status = res.statusCode;
      metrics?.request(route, status, seconds);
      if ((route === 'license' || route === 'contents') && entry.code) metrics?.refused(entry.code);
      if (entry.fresh && entry.scheme) metrics?.issued(entry.scheme as 'a' | 'b');
      const { fresh: _f, ...fields } = entry;
      const line = { reqId, method: req.method, route, path, status, ms: Math.round(seconds * 1e5) / 100, ...fields };
      if (status >= 500) log.warn(line, 'request');
      else log.info(line, 'request');
    }
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    metrics?.inflight.inc();
    handle(req, res).finally(() => {
      inFlight--;
      metrics?.inflight.dec();
      if (inFlight === 0 && idleResolve) idleResolve();
    });
  };
  const server: Server = o.tls
    ? createHttpsServer({ cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) }, listener)
    : createHttpServer(listener);
  server.requestTimeout = 15_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  const addr = await listen(server, o.port ?? DEFAULT_PORT, o.host ?? '127.0.0.1');
  const url = urlOf(o.tls ? 'https' : 'http', addr);

  let metricsServer: Server | undefined;
  let metricsUrl: string | undefined = metrics ? url : undefined;
  if (metrics && o.metricsListen) {
    metricsServer = createHttpServer((req, res) => {
      if (req.url === '/metrics' && req.method === 'GET') void serveMetrics(res);
      else answerJson(res, 404, { error: { code: CenterRefusal.NOT_FOUND, message: 'only GET /metrics here' } });
    });
    metricsUrl = urlOf('http', await listen(metricsServer, o.metricsListen.port, o.metricsListen.host));
  }
  log.info({ url, metricsUrl, centerId: center.centerId, ledger: ledger.name, console: !!consoleHandler }, 'listening');

  const close = async (opts: { force?: boolean } = {}) => {
    if (closing && !opts.force) return;
    closing = true;
    draining = true;
    metrics?.ready(false);
    clearInterval(watch);
    const stopped = new Promise<void>((r) => server.close(() => r()));
    server.closeIdleConnections();
    // The console's live feeds never finish on their own: end them before waiting for what is in flight.
    await consoleHandler?.close?.();
    if (opts.force) server.closeAllConnections();
    else if (inFlight > 0) await new Promise<void>((r) => (idleResolve = r));
    server.closeAllConnections();
    await stopped;
    if (metricsServer) await new Promise<void>((r) => { metricsServer!.closeAllConnections(); metricsServer!.close(() => r()); });
    await center.close(); // the SQLite group commit is flushed before the file closes
    log.info({ forced: !!opts.force }, 'stopped');
    await flushCenterLog(log);
  };

  return {
    url,
    port: addr.port,
    metricsUrl,
    center,
    log,
    async drain(drainMs: number) {
      if (draining) return;
      draining = true;
      metrics?.ready(false);
      log.info({ drainMs, inFlight }, 'draining');
      await new Promise((r) => setTimeout(r, drainMs));
      await close();
    },
    close,
  };
}
