/**
 * The station's side of the license center service: signed requests, verified responses, bounded
 * retries on network errors and 5xx with the same request ID (so a retry after a lost response
 * returns the same license, billed once); a 4xx is final and shown to the technician in words.
 */
import { randomBytes } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { ExitCode, MocopyError, RefusedError } from '../errors.js';
import { H, macMatches, openLicenseB, requestMac, responseMac } from './http-auth.js';
import { CenterRefusal, type CenterClient, type ContentInfo, type License, type LicenseB, type LicenseRequest, type StationKey } from './types.js';

export class CenterUnavailableError extends MocopyError {
  constructor(url: string, detail: string, cause?: unknown) {
    super('E_CENTER_UNAVAILABLE', `the license center at ${url} could not be reached: ${detail}`, {
      exitCode: ExitCode.CENTER_UNAVAILABLE,
      hint: 'check the network and the center URL (--center / MOCOPY_CENTER); nothing was copied, run the same command again later',
      ...(cause !== undefined ? { cause } : {}),
    });
  }
}

export interface RetryOptions {
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  timeoutMs: number;
}

export const DEFAULT_CLIENT_RETRY: RetryOptions = { attempts: 6, initialDelayMs: 200, maxDelayMs: 5000, timeoutMs: 15000 };

/**
 * Keep-alive connections shared by every client of the process: a station asks for one license per disc, a
 * duplicator for several at once, and a connection set up once serves them all (TLS handshakes included).
 */
const agents = { http: new HttpAgent({ keepAlive: true, maxSockets: 64 }), https: new HttpsAgent({ keepAlive: true, maxSockets: 64 }) };

interface Answer { status: number; headers: IncomingHttpHeaders; text: string }

/** One HTTP exchange over node:http (lighter than fetch per request), with a timeout for the whole of it. */
function exchange(url: string, method: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const tls = u.protocol === 'https:';
    const req = (tls ? httpsRequest : httpRequest)(u, { method, headers: body ? { ...headers, 'content-length': String(Buffer.byteLength(body)) } : headers, agent: tls ? agents.https : agents.http }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString('utf8') });
      });
      res.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.end(body || undefined);
  });
}

const header = (h: IncomingHttpHeaders, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

export class HttpCenterClient implements CenterClient {
  private readonly base: string;
  private readonly retry: RetryOptions;
  constructor(url: string, private readonly station: StationKey, retry: Partial<RetryOptions> = {}) {
    this.base = url.replace(/\/+$/, '');
    this.retry = { ...DEFAULT_CLIENT_RETRY, ...retry };
  }

  private async call<T>(method: 'GET' | 'POST', path: string, payload?: unknown): Promise<T> {
    const body = payload === undefined ? '' : JSON.stringify(payload);
    let delay = this.retry.initialDelayMs;
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.retry.attempts; attempt++) {
      // Each attempt is a new request: new nonce and timestamp, same body (and request ID).
      const nonce = randomBytes(16).toString('hex');
      const ts = String(Date.now());
      const mac = requestMac(this.station.key, this.station.stationId, method, path, ts, nonce, body);
      let res: Answer;
      try {
        res = await exchange(this.base + path, method, { 'content-type': 'application/json', [H.station]: this.station.stationId, [H.timestamp]: ts, [H.nonce]: nonce, [H.mac]: mac.toString('hex') }, method === 'POST' ? body : '', this.retry.timeoutMs);
      } catch (e) {
        lastError = e;
        if (attempt === this.retry.attempts) break;
        await sleep(jitter(delay));
        delay = Math.min(delay * 2, this.retry.maxDelayMs);
        continue;
      }
      const { text } = res;
      const signed = header(res.headers, H.responseMac);
      // The center's request ID, so a technician's report can be matched to the center's log line.
      const reqId = header(res.headers, 'x-request-id');
      const ref = reqId ? ` (center request ${reqId})` : '';
      const authentic = macMatches(responseMac(this.station.key, this.station.stationId, res.status, nonce, text), signed);
      if (res.status >= 500) {
        lastError = new Error(`HTTP ${res.status}${ref}`);
        if (attempt === this.retry.attempts) break;
        await sleep(jitter(delay));
        delay = Math.min(delay * 2, this.retry.maxDelayMs);
        continue;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      if (res.status >= 400) {
        // Refusals for unknown stations cannot be signed (the center has no key for them): they refuse, never grant.
        const err = (parsed as { error?: { code?: string; message?: string } })?.error;
        throw new RefusedError(err?.code ?? `E_HTTP_${res.status}`, `the license center refused: ${err?.message ?? `HTTP ${res.status}`}${ref}`, {
          hint: refusalHint(err?.code),
        });
      }
      if (!authentic) {
        throw new RefusedError(CenterRefusal.BAD_RESPONSE_MAC, `the license center's answer does not verify (altered or replayed on the way); nothing was copied${ref}`, {
          hint: 'run the same command again; if it persists, the network path to the center is being tampered with',
        });
      }
      return parsed as T;
    }
    throw new CenterUnavailableError(this.base, lastError instanceof Error ? lastError.message : String(lastError), lastError);
  }

  async requestLicense(req: LicenseRequest): Promise<License> {
    const l = await this.call<License>('POST', '/v1/licenses', req);
    if (l.scheme === 'b') return openLicenseB(this.station.key, this.station.stationId, l as LicenseB);
    return l;
  }

  async listContents(): Promise<ContentInfo[]> {
    return (await this.call<{ contents: ContentInfo[] }>('GET', '/v1/contents')).contents;
  }

  async health(): Promise<{ ok: boolean; centerId: string }> {
    return JSON.parse((await exchange(this.base + '/v1/health', 'GET', {}, '', this.retry.timeoutMs)).text) as { ok: boolean; centerId: string };
  }

  async close(): Promise<void> {}
}

function refusalHint(code: string | undefined): string | undefined {
  switch (code) {
    case CenterRefusal.UNKNOWN_STATION: return 'this station is not registered at the license center: check --station-key';
    case CenterRefusal.BAD_MAC: return 'the station key does not match the one the center holds for this station';
    case CenterRefusal.UNAUTHORIZED: return 'the center did not accept this station\'s credentials: check that --station-key is the key file the center issued for this station, and that it was not revoked and re-issued';
    case CenterRefusal.BAD_HEADERS: return 'the station software sent a malformed authentication header: update or fix the station software (the message names the header)';
    case CenterRefusal.STALE_TIMESTAMP: return "set this computer's clock right (the center accepts requests within 5 minutes)";
    case CenterRefusal.STATION_REVOKED: return 'this station has been revoked: contact the license center';
    case CenterRefusal.UNKNOWN_CONTENT: return 'the license center does not sell this content: check the content ID with `mocopy catalog`';
    case CenterRefusal.SCHEME_NOT_ALLOWED: return 'try the other scheme (--scheme a or --scheme b)';
    default: return undefined;
  }
}

function jitter(ms: number): number {
  return ms / 2 + Math.random() * (ms / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
