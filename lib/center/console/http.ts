/** Small HTTP pieces of the console: security headers, cookies, form bodies, CSRF tokens, CSV. */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin', // not no-referrer: Chromium then sends "Origin: null" with form posts
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export class ConsoleHttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export const MAX_FORM_BYTES = 16 * 1024;

export function isTls(req: IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean }).encrypted === true;
}

export function parseCookies(req: IncomingMessage): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of String(req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const k = part.slice(0, i).trim();
    if (!m.has(k)) m.set(k, part.slice(i + 1).trim());
  }
  return m;
}

export function cookie(req: IncomingMessage, name: string, value: string, o: { maxAge?: number } = {}): string {
  return [`${name}=${value}`, 'Path=/console', 'HttpOnly', 'SameSite=Strict', ...(isTls(req) ? ['Secure'] : []), ...(o.maxAge !== undefined ? [`Max-Age=${o.maxAge}`] : [])].join('; ');
}

export async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    req.resume();
    throw new ConsoleHttpError(415, 'forms are sent as application/x-www-form-urlencoded');
  }
  if (Number(req.headers['content-length'] ?? 0) > MAX_FORM_BYTES) {
    req.resume();
    throw new ConsoleHttpError(413, 'form too large');
  }
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > MAX_FORM_BYTES) throw new ConsoleHttpError(413, 'form too large');
    parts.push(c);
  }
  return new URLSearchParams(Buffer.concat(parts).toString('utf8'));
}

export const sha256hex = (s: string): string => createHash('sha256').update(s).digest('hex');

/** The CSRF token of a session (or of a sign-in form's pre-session): an HMAC under its secret token. */
export const csrfFor = (secret: string, purpose: 'session' | 'sign-in'): string =>
  createHmac('sha256', secret).update(`mocopy/console/csrf/${purpose}`).digest('base64url');

/** Constant-time comparison of two tokens (a length difference costs the same comparison). */
export function tokensEqual(a: string | null | undefined, b: string): boolean {
  const x = Buffer.from(String(a ?? ''));
  const y = Buffer.from(b);
  if (x.length !== y.length) {
    timingSafeEqual(y, y);
    return false;
  }
  return timingSafeEqual(x, y);
}

export function csvField(v: unknown): string {
  let s = v === null || v === undefined ? '' : String(v);
  // A spreadsheet would run a cell starting with = + @ (or a tab/CR) as a formula.
  if (/^[=+@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string | string[]> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(body)), ...extra });
  res.end(body);
}

export function redirect(res: ServerResponse, location: string, extra: Record<string, string | string[]> = {}): void {
  res.writeHead(303, { ...SECURITY_HEADERS, location, 'cache-control': 'no-store', 'content-length': '0', ...extra });
  res.end();
}

export const money = (cents: number | null | undefined): string => (cents === null || cents === undefined ? '—' : (cents / 100).toFixed(2));

/** "12.5", "12.50", "12" → cents; undefined when not a non-negative amount with at most 2 decimals. */
export function parseMoney(text: string | null): number | undefined {
  const m = /^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$/.exec(text ?? '');
  if (!m) return undefined;
  return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
}
