/**
 * The operators' web console, served by the license center under /console/ (lib/center/server.ts hands it
 * every request under that path). Server-rendered HTML (Eta, escaping every interpolation), one stylesheet
 * and one small script shipped with the package, nothing from the network.
 *
 * Safety: sessions are random 256-bit tokens in an HttpOnly, SameSite=Strict cookie (Secure under TLS),
 * stored only as SHA-256 hashes in the ledger (so every instance on one ledger knows them), idle expiry 30 min,
 * absolute 12 h. Every POST carries a CSRF token bound to the session (an HMAC under its token), compared in
 * constant time; the sign-in form has one bound to a pre-session cookie. Viewers read, admins also change;
 * each change is written with its audit row in one ledger transaction. Requests carrying station
 * authentication headers are refused: the console never accepts station MACs.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import { newKey } from '../../crypto/scheme.js';
import { isContentId, isScheme, type Scheme } from '../../domain/index.js';
import type { LicenseCenter } from '../center.js';
import type { AuditActor, AuditFilter, ConsoleSession, ContentRow, Ledger, LicenseCursor, LicenseFilter, LicenseListRow } from '../ledger.js';
import type { ConsoleHandler } from '../server.js';
import { ConsoleHttpError, cookie, csrfFor, csvField, isTls, money, parseCookies, parseMoney, readForm, redirect, SECURITY_HEADERS, send, sha256hex, tokensEqual } from './http.js';
import { dummyHash, OPERATOR_NAME, verifyPassword } from './password.js';

export const IDLE_MS = 30 * 60_000;
export const ABSOLUTE_MS = 12 * 3600_000;
/** Failed sign-ins for one name before each further attempt waits: 1 s, 2 s, 4 s … up to 15 min. */
export const FREE_FAILURES = 5;
export const MAX_LOCK_MS = 15 * 60_000;
export const PAGE_SIZE = 50;
/** How long the licenses page's filter lists are reused (ms). */
const CHOICES_MS = 2000;
const EXPORT_CHUNK = 2000;
const SESSION_COOKIE = 'mocopy_console';
const PRE_COOKIE = 'mocopy_console_pre';
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

export interface ConsoleOptions {
  now?: () => number;
  /** How often the live licenses feed looks for new licenses in the ledger (ms). */
  pollMs?: number;
}

export const lockMs = (failures: number): number => (failures < FREE_FAILURES ? 0 : Math.min(1000 * 2 ** (failures - FREE_FAILURES), MAX_LOCK_MS));

const here = fileURLToPath(new URL('.', import.meta.url));
const STATIC: Record<string, { type: string; body: Buffer }> = {
  'console.css': { type: 'text/css; charset=utf-8', body: readFileSync(`${here}static/console.css`) },
  'console.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(`${here}static/console.js`) },
  'favicon.svg': { type: 'image/svg+xml', body: readFileSync(`${here}static/favicon.svg`) },
};

interface Who extends ConsoleSession { tokenHash: string; csrf: string }
interface Live { filter: LicenseFilter; res: ServerResponse; tokenHash: string; checkedMs: number }

const NAV = [
  { href: '/console/', label: 'Overview', key: 'overview' },
  { href: '/console/licenses', label: 'Licenses', key: 'licenses' },
  { href: '/console/stations', label: 'Stations', key: 'stations' },
  { href: '/console/contents', label: 'Contents', key: 'contents' },
  { href: '/console/audit', label: 'Audit log', key: 'audit' },
];
const ACTIONS = ['station.add', 'station.revoke', 'content.add', 'content.price', 'operator.add', 'operator.remove', 'operator.passwd'];

const time = (iso: string | null | undefined): string => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/Z$/, '') : '—');
const dayIso = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** Whether a license passes a licenses filter (the live feed sends each page only what it shows). */
function matches(f: LicenseFilter, r: LicenseListRow): boolean {
  return (!f.stationId || r.stationId === f.stationId) && (!f.contentId || r.contentId === f.contentId) && (!f.mediumId || r.mediumId === f.mediumId)
    && (!f.from || r.issuedAt >= f.from) && (!f.to || r.issuedAt < f.to);
}

/** The console for a running center: pass as `serveCenter({ console: createConsole })`. */
export async function createConsole(center: LicenseCenter, opts: ConsoleOptions = {}): Promise<ConsoleHandler> {
  const ledger: Ledger = center.ledger;
  const now = opts.now ?? Date.now;
  const eta = new Eta({ views: `${here}views`, autoEscape: true, cache: true });
  await dummyHash(); // computed once, before the first sign-in of an unknown name would pay for it
  const live = new Set<Live>();
  let cursor: LicenseCursor | undefined;
  const recent = new Map<string, number>(); // license ID -> when seen, to drop repeats of the look-back window
  let polling = false;
  let closed = false;

  const stationNames = new Map<string, string>();
  const stationLabel = (id: string): string => {
    const n = stationNames.get(id);
    return n ? `${n} (${id})` : id;
  };
  /** Rows as a page shows them; a station this instance has not seen yet (another instance added it) is looked up once. */
  const liveRows = async (rows: LicenseListRow[]) => {
    if (rows.some((r) => !stationNames.has(r.stationId))) for (const s of await ledger.stations()) stationNames.set(s.id, s.name);
    return rows.map((r) => ({ id: r.id, time: time(r.issuedAt), station: stationLabel(r.stationId), contentId: r.contentId, mediumId: r.mediumId, scheme: r.scheme.toUpperCase(), price: money(r.amount) }));
  };
  const liveRow = async (r: LicenseListRow) => (await liveRows([r]))[0]!;
  // The licenses page's filter lists (stations, contents) change rarely but are drawn on every page: kept for
  // CHOICES_MS, dropped at once when this instance adds one; one added on another instance shows up within that time.
  let choices: { at: number; value: Promise<[Awaited<ReturnType<Ledger['stations']>>, ContentRow[]]> } | undefined;
  const filterChoices = () => {
    const t = performance.now();
    if (!choices || t - choices.at > CHOICES_MS) {
      const value = Promise.all([ledger.stations(), ledger.contents()]);
      choices = { at: t, value };
      value.then(([stations]) => { for (const st of stations) stationNames.set(st.id, st.name); }, () => { if (choices?.value === value) choices = undefined; });
    }
    return choices.value;
  };

  // Server-Timing on signed-in pages (browsers' developer tools show it; bench/console.ts reads it): the time spent
  // in the ledger, in the template, and from the request reaching the console to the page handed to Node's HTTP
  // response. Never before sign-in, where timings could tell an attacker something.
  const timing = new WeakMap<ServerResponse, { start: number; db: number; render: number; signedIn?: boolean }>();
  async function db<T>(res: ServerResponse, p: Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await p;
    } finally {
      const m = timing.get(res);
      if (m) m.db += performance.now() - t;
    }
  }
  const render = (view: string, data: Record<string, unknown>): string => eta.render(`./${view}`, { centerId: center.centerId, nav: [], who: undefined, ...data });
  const page = (res: ServerResponse, status: number, html: string, extra: Record<string, string | string[]> = {}) => {
    const m = timing.get(res);
    const serverTiming: Record<string, string> = m?.signedIn ? { 'server-timing': `db;dur=${m.db.toFixed(3)}, render;dur=${m.render.toFixed(3)}, total;dur=${(performance.now() - m.start).toFixed(3)}` } : {};
    send(res, status, 'text/html; charset=utf-8', html, { ...serverTiming, ...extra });
  };
  const rendered = (res: ServerResponse, f: () => string): string => {
    const t = performance.now();
    try {
      return f();
    } finally {
      const m = timing.get(res);
      if (m) m.render += performance.now() - t;
    }
  };
  const pageFor = (who: Who, current: string, view: string, data: Record<string, unknown>) =>
    render(view, { ...data, who, csrf: who.csrf, admin: who.role === 'admin', nav: NAV.map((n) => ({ ...n, current: n.key === current })) });
  const message = (res: ServerResponse, status: number, who: Who | undefined, heading: string, text: string, back = '/console/') =>
    page(res, status, who ? pageFor(who, '', 'message', { title: heading, heading, message: text, back }) : render('message', { title: heading, heading, message: text, back, csrf: '' }));

  const actorOf = (req: IncomingMessage, who: Who): AuditActor => ({ operator: who.operator, address: req.socket.remoteAddress ?? 'unknown' });

  async function sessionOf(req: IncomingMessage): Promise<Who | undefined> {
    const token = parseCookies(req).get(SESSION_COOKIE);
    if (!token || !TOKEN.test(token)) return undefined;
    const tokenHash = sha256hex(token);
    const s = await ledger.useSession(tokenHash, now(), IDLE_MS, ABSOLUTE_MS);
    return s && { ...s, tokenHash, csrf: csrfFor(token, 'session') };
  }

  /** Every state-changing request: same-origin, a CSRF token bound to this session, then the role. */
  function checkPost(req: IncomingMessage, form: URLSearchParams, who: Who, needAdmin = true): void {
    if (!tokensEqual(form.get('_csrf') ?? (req.headers['x-csrf-token'] as string | undefined), who.csrf)) throw new ConsoleHttpError(403, 'The form is out of date or did not come from this console (CSRF token missing or wrong). Reload the page and try again.');
    if (needAdmin && who.role !== 'admin') throw new ConsoleHttpError(403, 'Viewers can look but not change: this needs an admin.');
  }

  // ---- live licenses (server-sent events): one poller for all open pages, reading the shared ledger ----

  async function poll(): Promise<void> {
    if (polling || closed) return;
    polling = true;
    try {
      if (!cursor) {
        const last = (await ledger.licensePage({}, { order: 'desc', limit: 1 }))[0];
        cursor = last ? { issuedAt: last.issuedAt, id: last.id } : { issuedAt: '', id: '' };
        if (last) recent.set(last.id, now());
      }
      if (!live.size) return;
      // A license is stamped before its transaction commits, and other instances commit theirs too: look back
      // 10 s behind the newest seen, and drop the ones already sent.
      const back = cursor.issuedAt ? { issuedAt: new Date(Math.max(0, Date.parse(cursor.issuedAt) - 10_000)).toISOString(), id: '' } : undefined;
      const rows = await ledger.licensePage({}, { order: 'asc', limit: 500, ...(back ? { after: back } : {}) });
      const t = now();
      for (const r of rows) {
        if (recent.has(r.id)) continue;
        recent.set(r.id, t);
        if (r.issuedAt > cursor.issuedAt || (r.issuedAt === cursor.issuedAt && r.id > cursor.id)) cursor = { issuedAt: r.issuedAt, id: r.id };
        const data = `event: license\ndata: ${JSON.stringify(await liveRow(r))}\n\n`;
        for (const l of live) if (matches(l.filter, r)) l.res.write(data);
      }
      for (const [id, at] of recent) if (t - at > 60_000 && recent.size > 1) recent.delete(id);
      // Sessions end while a page is open: check each stream's session every 30 s.
      for (const l of [...live]) {
        if (t - l.checkedMs < 30_000) continue;
        l.checkedMs = t;
        if (!(await ledger.useSession(l.tokenHash, t, IDLE_MS, ABSOLUTE_MS))) endStream(l);
      }
    } catch {
      // The ledger is unavailable for a moment: the next poll tries again.
    } finally {
      polling = false;
    }
  }
  const timer = setInterval(() => {
    for (const l of [...live]) {
      // The server stopped listening (the center is stopping): end the streams, so it can finish.
      if ((l.res.socket as unknown as { server?: { listening?: boolean } } | null)?.server?.listening === false) endStream(l);
    }
    void poll();
  }, opts.pollMs ?? 500);
  timer.unref();
  const heartbeat = setInterval(() => { for (const l of live) l.res.write(': keep-alive\n\n'); }, 15_000);
  heartbeat.unref();
  function endStream(l: Live): void {
    live.delete(l);
    l.res.end();
  }

  // ---- pages ----

  async function overview(res: ServerResponse, who: Who): Promise<void> {
    const t = now();
    const today = `${dayIso(t)}T00:00:00.000Z`;
    const since7 = new Date(t - 7 * 86_400_000).toISOString();
    const since30 = new Date(t - 30 * 86_400_000).toISOString();
    const first = dayIso(t - 89 * 86_400_000);
    const [d, w, m, perDay, byContent, byStation, contents, stations] = await Promise.all([
      ledger.licenseTotals(today), ledger.licenseTotals(since7), ledger.licenseTotals(since30), ledger.licensesPerDay(`${first}T00:00:00.000Z`),
      ledger.revenueBy('content', since30, 5), ledger.revenueBy('station', since30, 5), ledger.contents(), ledger.stations(),
    ]);
    const counts = new Map(perDay.map((x) => [x.day, x.licenses]));
    const days = Array.from({ length: 90 }, (_, i) => dayIso(t - (89 - i) * 86_400_000));
    const max = Math.max(1, ...days.map((x) => counts.get(x) ?? 0));
    const width = 900;
    const height = 180;
    const bw = width / 90;
    const bars = days.map((day, i) => {
      const n = counts.get(day) ?? 0;
      const h = Math.round((n / max) * (height - 4));
      return { day, n, x: (i * bw + 1).toFixed(1), w: (bw - 2).toFixed(1), h, y: height - h };
    });
    const cName = new Map(contents.map((c) => [c.id, c.name]));
    const sName = new Map(stations.map((s) => [s.id, s.name]));
    page(res, 200, pageFor(who, 'overview', 'overview', {
      title: 'Overview',
      totals: [{ label: 'Today (UTC)', ...d }, { label: 'Last 7 days', ...w }, { label: 'Last 30 days', ...m }].map((x) => ({ ...x, revenue: money(x.revenue) })),
      chart: { width, height, bars, max, total: [...counts.values()].reduce((a, b) => a + b, 0), first: days[0], last: days[89] },
      tops: [
        { id: 'top-contents', title: 'Top contents by revenue, last 30 days', what: 'Content', rows: byContent.map((r) => ({ ...r, label: `${r.id} · ${cName.get(r.id) ?? ''}`, revenue: money(r.revenue) })) },
        { id: 'top-stations', title: 'Top stations by revenue, last 30 days', what: 'Station', rows: byStation.map((r) => ({ ...r, label: `${sName.get(r.id) ?? ''} (${r.id})`, revenue: money(r.revenue) })) },
      ],
    }));
  }

  /** The licenses filter from a query string; throws a 400 with words for a malformed field. */
  function licenseFilter(q: URLSearchParams): { filter: LicenseFilter; f: Record<string, string> } {
    const f = { station: q.get('station') ?? '', content: q.get('content') ?? '', medium: (q.get('medium') ?? '').trim().toLowerCase().replace(/[\s:]/g, ''), from: q.get('from') ?? '', to: q.get('to') ?? '' };
    const filter: LicenseFilter = {};
    const date = /^\d{4}-\d{2}-\d{2}$/;
    if (f.station) filter.stationId = f.station.slice(0, 64);
    if (f.content) filter.contentId = f.content.slice(0, 64);
    if (f.medium) {
      if (!/^[0-9a-f]{1,128}$/.test(f.medium)) throw new ConsoleHttpError(400, 'A medium ID is hexadecimal digits (spaces and colons are ignored).');
      filter.mediumId = f.medium;
    }
    if (f.from) {
      if (!date.test(f.from) || Number.isNaN(Date.parse(f.from))) throw new ConsoleHttpError(400, 'From is a date (YYYY-MM-DD).');
      filter.from = `${f.from}T00:00:00.000Z`;
    }
    if (f.to) {
      if (!date.test(f.to) || Number.isNaN(Date.parse(f.to))) throw new ConsoleHttpError(400, 'To is a date (YYYY-MM-DD).');
      filter.to = `${dayIso(Date.parse(f.to) + 86_400_000)}T00:00:00.000Z`; // the whole "to" day
    }
    return { filter, f };
  }
  const filterQuery = (f: Record<string, string>) => new URLSearchParams(Object.entries(f).filter(([, v]) => v)).toString();
  const encodeCursor = (c: LicenseCursor) => Buffer.from(`${c.issuedAt}\n${c.id}`).toString('base64url');
  function decodeCursor(s: string | null): LicenseCursor | undefined {
    if (!s) return undefined;
    const [issuedAt, id, extra] = Buffer.from(s, 'base64url').toString('utf8').split('\n');
    if (!issuedAt || !id || extra !== undefined || issuedAt.length > 40 || id.length > 80) throw new ConsoleHttpError(400, 'That page link is not valid.');
    return { issuedAt, id };
  }

  async function licenses(res: ServerResponse, who: Who, url: URL): Promise<void> {
    let error: string | undefined;
    let filter: LicenseFilter = {};
    let f: Record<string, string> = { station: '', content: '', medium: '', from: '', to: '' };
    let rows: LicenseListRow[] = [];
    let after: LicenseCursor | undefined;
    try {
      ({ filter, f } = licenseFilter(url.searchParams));
      after = decodeCursor(url.searchParams.get('after'));
      rows = await db(res, ledger.licensePage(filter, { order: 'desc', limit: PAGE_SIZE + 1, ...(after ? { after } : {}) }));
    } catch (e) {
      if (!(e instanceof ConsoleHttpError)) throw e;
      error = e.message;
    }
    const more = rows.length > PAGE_SIZE;
    rows = rows.slice(0, PAGE_SIZE);
    const [stations, contents] = await db(res, filterChoices());
    const fq = filterQuery(f);
    const last = rows[rows.length - 1];
    const shown = await liveRows(rows);
    page(res, error ? 400 : 200, rendered(res, () => pageFor(who, 'licenses', 'licenses', {
      title: 'Licenses', f, error, stations, contents,
      rows: shown,
      live: !after && !error,
      eventsHref: `/console/events?${new URLSearchParams({ ...Object.fromEntries(new URLSearchParams(fq)), since: encodeCursor(rows[0] ? { issuedAt: rows[0].issuedAt, id: rows[0].id } : { issuedAt: new Date(now()).toISOString(), id: '-' }) })}`,
      csvHref: `/console/licenses.csv${fq ? `?${fq}` : ''}`,
      nextHref: more && last ? `/console/licenses?${new URLSearchParams({ ...Object.fromEntries(new URLSearchParams(fq)), after: encodeCursor({ issuedAt: last.issuedAt, id: last.id }) })}` : undefined,
    })));
  }

  /** Every matching license with its bill, oldest first (the report's order), streamed in keyset chunks. */
  async function exportCsv(res: ServerResponse, url: URL): Promise<void> {
    const { filter } = licenseFilter(url.searchParams);
    res.writeHead(200, {
      ...SECURITY_HEADERS, 'content-type': 'text/csv; charset=utf-8', 'cache-control': 'no-store',
      'content-disposition': `attachment; filename="licenses-${dayIso(now())}.csv"`,
    });
    res.write('licenseId,requestId,stationId,contentId,mediumId,scheme,issuedAt,billId,amount,billedAt\n');
    let after: LicenseCursor | undefined;
    for (;;) {
      const rows = await ledger.licensePage(filter, { order: 'asc', limit: EXPORT_CHUNK, ...(after ? { after } : {}) });
      if (!rows.length) break;
      let chunk = '';
      for (const r of rows) chunk += [r.id, r.requestId, r.stationId, r.contentId, r.mediumId, r.scheme, r.issuedAt, r.billId, r.amount, r.billedAt].map(csvField).join(',') + '\n';
      const last = rows[rows.length - 1]!;
      after = { issuedAt: last.issuedAt, id: last.id };
      if (!res.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => { res.off('drain', done); res.off('close', done); resolve(); };
          res.on('drain', done);
          res.on('close', done);
        });
      }
      if (res.destroyed) return;
      if (rows.length < EXPORT_CHUNK) break;
    }
    res.end();
  }

  /**
   * A page's live feed. `since` is the newest license the page was rendered with: the licenses after it are sent
   * first (those issued between the page and this stream), then whatever the poller finds. The page's script
   * drops a license it shows already.
   */
  async function events(req: IncomingMessage, res: ServerResponse, who: Who, url: URL): Promise<void> {
    const { filter } = licenseFilter(url.searchParams);
    const since = decodeCursor(url.searchParams.get('since')) ?? { issuedAt: new Date(now()).toISOString(), id: '' };
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write('retry: 1000\n\n');
    if (!live.size) {
      // Nobody was watching, so the poller did not follow the ledger: it starts again from the newest license.
      cursor = undefined;
      recent.clear();
    }
    const l: Live = { filter, res, tokenHash: who.tokenHash, checkedMs: now() };
    live.add(l);
    req.on('close', () => live.delete(l));
    for (const r of await ledger.licensePage(filter, { order: 'asc', limit: PAGE_SIZE, after: since })) res.write(`event: license\ndata: ${JSON.stringify(await liveRow(r))}\n\n`);
    void poll();
  }

  async function stationsPage(res: ServerResponse, who: Who, notice?: string): Promise<void> {
    const [stations, activity] = await Promise.all([ledger.stations(), ledger.stationActivity()]);
    const act = new Map(activity.map((a) => [a.id, a]));
    page(res, 200, pageFor(who, 'stations', 'stations', {
      title: 'Stations', notice,
      stations: stations.map((s) => {
        const a = act.get(s.id);
        const seen = [a?.lastLicenseAt ?? '', a?.lastRequestMs ? new Date(a.lastRequestMs).toISOString() : ''].sort().pop();
        return { ...s, createdAt: time(s.createdAt), lastSeen: time(seen || null), licenses: a?.licenses ?? 0 };
      }),
    }));
  }

  async function addStation(req: IncomingMessage, res: ServerResponse, who: Who, form: URLSearchParams): Promise<void> {
    const name = (form.get('name') ?? '').trim();
    if (!name || name.length > 200) throw new ConsoleHttpError(400, 'A station needs a name (up to 200 characters).');
    const id = `st-${randomUUID().slice(0, 8)}`;
    const token = randomBytes(32).toString('base64url');
    await ledger.addStationAudited(id, name, newKey(), actorOf(req, who), { tokenHash: sha256hex(token), sessionHash: who.tokenHash, expiresMs: now() + 10 * 60_000 });
    stationNames.set(id, name);
    choices = undefined;
    page(res, 200, pageFor(who, 'stations', 'station-added', { title: 'Station registered', id, name, token }));
  }

  async function downloadKey(res: ServerResponse, who: Who, form: URLSearchParams): Promise<void> {
    const token = form.get('t') ?? '';
    const st = TOKEN.test(token) ? await ledger.takeKeyDownload(sha256hex(token), who.tokenHash, now()) : undefined;
    if (!st) throw new ConsoleHttpError(410, 'This key file was downloaded already, or its offer expired (10 minutes). It is never offered again: revoke the station and add a new one if the file is lost.');
    // The station key file format of lib/center/station-key.ts (writeStationKey).
    const body = JSON.stringify({ format: 'mocopy-station-key', version: 1, stationId: st.id, centerId: center.centerId, key: st.userKey.toString('hex') }, null, 1) + '\n';
    send(res, 200, 'application/json', body, { 'content-disposition': `attachment; filename="${st.id}.key"` });
  }

  async function revokeConfirm(res: ServerResponse, who: Who, url: URL): Promise<void> {
    if (who.role !== 'admin') throw new ConsoleHttpError(403, 'Viewers can look but not change: this needs an admin.');
    const st = await ledger.station(url.searchParams.get('id') ?? '');
    if (!st) throw new ConsoleHttpError(404, 'No such station.');
    if (st.status !== 'active') return redirect(res, '/console/stations');
    page(res, 200, pageFor(who, 'stations', 'revoke', { title: `Revoke ${st.name}`, id: st.id, name: st.name }));
  }

  async function revoke(req: IncomingMessage, res: ServerResponse, who: Who, form: URLSearchParams): Promise<void> {
    const id = form.get('id') ?? '';
    const st = await ledger.station(id);
    if (!st) throw new ConsoleHttpError(404, 'No such station.');
    await ledger.revokeStationAudited(id, actorOf(req, who));
    await stationsPage(res, who, `Station ${st.name} (${st.id}) is revoked: its next request is refused.`);
  }

  async function contentsPage(res: ServerResponse, who: Who, o: { notice?: string; error?: string; status?: number } = {}): Promise<void> {
    const contents = await ledger.contents();
    page(res, o.status ?? 200, pageFor(who, 'contents', 'contents', {
      title: 'Contents', notice: o.notice, error: o.error,
      contents: contents.map((c, i) => ({ ...c, key: i, schemes: c.schemes.map((s) => s.toUpperCase()).join(', '), price: money(c.price) })),
    }));
  }

  async function addContent(req: IncomingMessage, res: ServerResponse, who: Who, form: URLSearchParams): Promise<void> {
    const id = (form.get('id') ?? '').trim();
    const name = (form.get('name') ?? '').trim();
    const schemes = [...new Set(form.getAll('schemes'))].filter(isScheme).sort() as Scheme[];
    const price = parseMoney(form.get('price'));
    const error = !isContentId(id) ? 'A content ID is 1-64 characters A-Z a-z 0-9 . _ - starting with a letter or digit.'
      : !name || name.length > 200 ? 'A content needs a title (up to 200 characters).'
        : !schemes.length ? 'Choose at least one scheme.'
          : price === undefined ? 'A price is an amount like 15 or 15.00.' : undefined;
    if (error) return contentsPage(res, who, { error, status: 400 });
    if (!(await ledger.addContentAudited({ id, name, schemes, price: price! }, actorOf(req, who)))) return contentsPage(res, who, { error: `There is a content ${id} already.`, status: 409 });
    choices = undefined;
    await contentsPage(res, who, { notice: `Content ${id} added.` });
  }

  async function setPrice(req: IncomingMessage, res: ServerResponse, who: Who, form: URLSearchParams): Promise<void> {
    const id = form.get('id') ?? '';
    const price = parseMoney(form.get('price'));
    if (price === undefined) return contentsPage(res, who, { error: 'A price is an amount like 15 or 15.00.', status: 400 });
    if (!(await ledger.setContentPrice(id, price, actorOf(req, who)))) throw new ConsoleHttpError(404, 'No such content.');
    await contentsPage(res, who, { notice: `The price of ${id} is now ${money(price)} for licenses issued from now on; bills already issued keep their price.` });
  }

  async function audit(res: ServerResponse, who: Who, url: URL): Promise<void> {
    const q = url.searchParams;
    const f = { operator: (q.get('operator') ?? '').trim(), action: q.get('action') ?? '', target: (q.get('target') ?? '').trim() };
    const filter: AuditFilter = {};
    if (f.operator) filter.operator = f.operator.slice(0, 100);
    if (f.action) filter.action = f.action.slice(0, 40);
    if (f.target) filter.target = f.target.slice(0, 100);
    const before = /^\d{1,15}$/.test(q.get('before') ?? '') ? Number(q.get('before')) : undefined;
    const rows = await ledger.auditLog(filter, before, PAGE_SIZE + 1);
    const more = rows.length > PAGE_SIZE;
    const shown = rows.slice(0, PAGE_SIZE);
    const fq = Object.fromEntries(Object.entries(f).filter(([, v]) => v));
    page(res, 200, pageFor(who, 'audit', 'audit', {
      title: 'Audit log', f, actions: ACTIONS,
      rows: shown.map((r) => ({ ...r, at: time(r.at), before: r.before ?? '—', after: r.after ?? '—' })),
      nextHref: more ? `/console/audit?${new URLSearchParams({ ...fq, before: String(shown[shown.length - 1]!.id) })}` : undefined,
    }));
  }

  // ---- sign-in ----

  function signInPage(req: IncomingMessage, res: ServerResponse, o: { error?: string; name?: string; status?: number } = {}): void {
    let pre = parseCookies(req).get(PRE_COOKIE);
    const headers: Record<string, string> = {};
    if (!pre || !TOKEN.test(pre)) {
      pre = randomBytes(32).toString('base64url');
      headers['set-cookie'] = cookie(req, PRE_COOKIE, pre, { maxAge: 3600 });
    }
    const csrf = csrfFor(pre, 'sign-in');
    page(res, o.status ?? 200, render('sign-in', { title: 'Sign in', csrf, error: o.error, name: o.name ?? '' }), headers);
  }

  async function signIn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readForm(req);
    const pre = parseCookies(req).get(PRE_COOKIE);
    if (!pre || !TOKEN.test(pre) || !tokensEqual(form.get('_csrf'), csrfFor(pre, 'sign-in'))) {
      throw new ConsoleHttpError(403, 'The sign-in form is out of date or did not come from this console. Reload the page and try again.');
    }
    const name = (form.get('name') ?? '').trim();
    const password = form.get('password') ?? '';
    const t = now();
    const valid = OPERATOR_NAME.test(name);
    if (valid) {
      const fails = await ledger.signInFailures(name);
      const wait = fails ? fails.lastMs + lockMs(fails.failures) - t : 0;
      if (wait > 0) {
        return signInPage(req, res, { status: 429, name, error: `Too many failed sign-ins for this name: wait ${Math.ceil(wait / 1000)} s before trying again.` });
      }
    }
    const op = valid ? await ledger.operator(name) : undefined;
    // An unknown name costs the same scrypt as a known one.
    const ok = (await verifyPassword(password, op?.passwordHash ?? await dummyHash())) && !!op;
    if (!ok) {
      const n = valid ? await ledger.recordSignInFailure(name, t) : 0;
      const wait = lockMs(n);
      return signInPage(req, res, { status: 401, name, error: `Wrong name or password.${wait ? ` Too many failed sign-ins for this name: wait ${Math.ceil(wait / 1000)} s before trying again.` : ''}` });
    }
    await ledger.clearSignInFailures(name);
    const token = randomBytes(32).toString('base64url');
    await ledger.createSession({ tokenHash: sha256hex(token), operator: name, nowMs: t, address: req.socket.remoteAddress ?? 'unknown' });
    redirect(res, '/console/', { 'set-cookie': [cookie(req, SESSION_COOKIE, token), cookie(req, PRE_COOKIE, '', { maxAge: 0 })] });
  }

  // ---- routing ----

  async function route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'GET' && path.startsWith('/console/static/')) {
      const a = STATIC[path.slice('/console/static/'.length)];
      if (!a) throw new ConsoleHttpError(404, 'No such file.');
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': a.type, 'cache-control': 'public, max-age=300', 'content-length': String(a.body.length) });
      res.end(a.body);
      return;
    }
    if (path === '/console') return redirect(res, '/console/');
    if (path === '/console/sign-in') {
      if (method === 'GET') return signInPage(req, res);
      if (method === 'POST') return signIn(req, res);
      throw new ConsoleHttpError(405, 'Method not allowed.');
    }
    const who = await db(res, sessionOf(req));
    const m = timing.get(res);
    if (m && who) m.signedIn = true;
    if (!who) {
      if (method === 'GET' && !path.startsWith('/console/events') && path !== '/console/licenses.csv') return redirect(res, '/console/sign-in');
      if (method === 'POST') req.resume();
      throw new ConsoleHttpError(401, 'Sign in first.');
    }
    if (method === 'GET') {
      switch (path) {
        case '/console/': return overview(res, who);
        case '/console/licenses': return licenses(res, who, url);
        case '/console/licenses.csv': return exportCsv(res, url);
        case '/console/events': return events(req, res, who, url);
        case '/console/stations': return stationsPage(res, who);
        case '/console/stations/revoke': return revokeConfirm(res, who, url);
        case '/console/contents': return contentsPage(res, who);
        case '/console/audit': return audit(res, who, url);
        default: throw new ConsoleHttpError(404, 'No such page.');
      }
    }
    if (method !== 'POST') throw new ConsoleHttpError(405, 'Method not allowed.');
    const form = await readForm(req);
    if (path === '/console/sign-out') {
      checkPost(req, form, who, false);
      await ledger.deleteSession(who.tokenHash);
      return redirect(res, '/console/sign-in', { 'set-cookie': cookie(req, SESSION_COOKIE, '', { maxAge: 0 }) });
    }
    checkPost(req, form, who);
    switch (path) {
      case '/console/stations': return addStation(req, res, who, form);
      case '/console/stations/key': return downloadKey(res, who, form);
      case '/console/stations/revoke': return revoke(req, res, who, form);
      case '/console/contents': return addContent(req, res, who, form);
      case '/console/contents/price': return setPrice(req, res, who, form);
      default: throw new ConsoleHttpError(404, 'No such page.');
    }
  }

  return {
    async handle(req, res, url) {
      timing.set(res, { start: performance.now(), db: 0, render: 0 });
      try {
        // The console never takes station authentication, and a station's request never gets a console answer.
        if (Object.keys(req.headers).some((h) => h.startsWith('x-mocopy-'))) throw new ConsoleHttpError(400, 'The console does not accept station authentication (x-mocopy-* headers).');
        const site = req.headers['sec-fetch-site'];
        if (req.method === 'POST' && site !== undefined && site !== 'same-origin' && site !== 'none') throw new ConsoleHttpError(403, 'Cross-site form posts are refused.');
        const origin = req.headers.origin;
        if (req.method === 'POST' && origin !== undefined && origin !== `${isTls(req) ? 'https' : 'http'}://${req.headers.host}`) throw new ConsoleHttpError(403, 'Cross-origin form posts are refused.');
        await route(req, res, url);
      } catch (e) {
        if (!(e instanceof ConsoleHttpError)) throw e;
        if (res.headersSent) return void res.destroy();
        if (req.readableEnded === false) req.resume();
        const who = e.status === 401 ? undefined : await sessionOf(req).catch(() => undefined);
        message(res, e.status, who, e.status === 403 ? 'Not allowed' : e.status === 401 ? 'Sign in first' : e.status === 404 ? 'Not found' : 'Cannot do that', e.message, e.status === 401 ? '/console/sign-in' : '/console/');
      }
    },
    async close() {
      closed = true;
      clearInterval(timer);
      clearInterval(heartbeat);
      for (const l of [...live]) endStream(l);
    },
  };
}
