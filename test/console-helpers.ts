/** Helpers of the console tests: an HTTP agent with a cookie jar and the page's CSRF token, operators, the CLI. */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { hashPassword } from '../lib/center/console/password.js';
import { openLedger } from '../lib/center/ledger.js';

export interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: string }

/** One HTTP(S) request; self-signed certificates accepted (test servers only). */
export function call(url: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { method: o.method ?? 'GET', headers: o.headers ?? {}, rejectUnauthorized: false, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

export const cookieOf = (a: Answer, name: string): string | undefined => {
  const all = ([] as string[]).concat(a.headers['set-cookie'] ?? []);
  return all.find((c) => c.startsWith(`${name}=`));
};
export const csrfOf = (html: string): string => /<meta name="csrf-token" content="([^"]*)">/.exec(html)![1]!;
export const form = (o: Record<string, string>) => new URLSearchParams(o).toString();
export const FORM = 'application/x-www-form-urlencoded';

/** A signed-in browser, as far as HTTP goes: its cookie jar and its page's CSRF token. */
export class Agent {
  cookies = new Map<string, string>();
  csrf = '';
  constructor(readonly base: string) {}
  private jar(a: Answer): void {
    for (const c of ([] as string[]).concat(a.headers['set-cookie'] ?? [])) {
      const [kv] = c.split(';');
      const i = kv!.indexOf('=');
      const v = kv!.slice(i + 1);
      if (v) this.cookies.set(kv!.slice(0, i), v);
      else this.cookies.delete(kv!.slice(0, i));
    }
  }
  get cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  async get(path: string, headers: Record<string, string> = {}): Promise<Answer> {
    const a = await call(this.base + path, { headers: { cookie: this.cookieHeader, ...headers } });
    this.jar(a);
    if (a.headers['content-type']?.toString().startsWith('text/html')) this.csrf = /<meta name="csrf-token" content="([^"]*)">/.exec(a.body)?.[1] ?? this.csrf;
    return a;
  }
  async post(path: string, fields: Record<string, string>, o: { csrf?: string | null; headers?: Record<string, string> } = {}): Promise<Answer> {
    const f = { ...fields };
    const token = o.csrf === undefined ? this.csrf : o.csrf;
    if (token !== null) f._csrf = token;
    const a = await call(this.base + path, { method: 'POST', headers: { cookie: this.cookieHeader, 'content-type': FORM, ...o.headers }, body: form(f) });
    this.jar(a);
    return a;
  }
  async signIn(name: string, password: string): Promise<Answer> {
    await this.get('/console/sign-in');
    return this.post('/console/sign-in', { name, password });
  }
}

export async function addOperator(ledgerSpec: string, name: string, role: 'admin' | 'viewer', password: string): Promise<void> {
  const l = await openLedger(ledgerSpec, { create: false });
  try {
    const at = new Date().toISOString();
    assert.ok(await l.addOperator({ name, role, passwordHash: await hashPassword(password), createdAt: at, passwordChangedAt: at }, { operator: 'test', address: 'local' }));
  } finally {
    await l.close();
  }
}

export function cli(args: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/console-cli.ts', ...args], { encoding: 'utf8', input: input ?? '', env: { ...process.env, MOCOPY_CONFIG: '/nonexistent/mocopy.json' }, timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

