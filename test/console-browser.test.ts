/**
 * The operators' console in real Chromium (Debian's `chromium`, driven by playwright-core through its
 * executablePath: no browser download), against a real center whose licenses come from real `mocopy copy` runs.
 * axe-core is injected from node_modules (no network). The SQLite run takes the screenshots docs/console.md shows
 * (into docs/console with MOCOPY_UPDATE_SCREENSHOTS=1, else into the temporary directory).
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createConsole } from '../lib/center/console/console.js';
import { serveCenter, type RunningCenter } from '../lib/center/server.js';
import { makeWorld, type World } from './helpers/fixtures.js';
import { LEDGER_BACKENDS, requirePostgres, worldLedger } from './helpers/postgres.js';
import { requireCapability } from './helpers/tools.js';
import { addOperator } from './console-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
/**
 * docs/console.md's screenshots are rewritten only on request (`npm run docs:screenshots`): they show the
 * run's own times and IDs, so every test run would otherwise leave the working tree changed.
 */
const SHOTS = process.env.MOCOPY_UPDATE_SCREENSHOTS === '1' ? join(process.cwd(), 'docs', 'console') : join(tmpdir(), 'mocopy-console-shots');
const PW = 'correct horse battery';
const XSS = '<img src=x onerror=alert(1)>';

/** `mocopy copy` from source, asynchronously (the page keeps running meanwhile). */
function mocopyAsync(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { env: { ...process.env, MOCOPY_CONFIG: '/nonexistent/mocopy.json' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function axe(page: Page): Promise<string[]> {
  await page.evaluate(AXE); // evaluated, not a <script> element: the page's CSP stays as it is
  const r = await page.evaluate(() => {
    const g = globalThis as unknown as { axe: { run(d: unknown, o: unknown): Promise<{ violations: Array<{ id: string; impact: string; help: string; nodes: unknown[] }> }> }; document: unknown };
    return g.axe.run(g.document, { resultTypes: ['violations'] });
  });
  return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.length})`);
}

for (const backend of LEDGER_BACKENDS) describe(`operators' console in Chromium [${backend}]`, function () {
  this.timeout(180_000);
  let w: World;
  let running: RunningCenter;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  const dialogs: string[] = [];
  let medium = 0;
  const copy = (keyPath: string) => {
    const hex = `c0de${(++medium).toString(16).padStart(4, '0')}`;
    const disc = w.newDisc(`d${medium}.mo`, hex);
    return { hex, run: () => mocopyAsync(['copy', `emu:${w.masterIso}`, `emu:${disc}`, '--content', 'APP-1', '--center', running.url, '--station-key', keyPath, '--scheme', 'a']) };
  };

  before(async function () {
    requireCapability(this, existsSync(CHROMIUM), 'chromium (/usr/bin/chromium)', 'chromium');
    if (backend === 'postgres') requirePostgres(this);
    w = await makeWorld(await worldLedger(backend));
    await addOperator(w.ledger, 'alice', 'admin', PW);
    await addOperator(w.ledger, 'victor', 'viewer', PW);
    running = await serveCenter({ db: w.ledger, port: 0, log: () => {}, console: createConsole });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
    ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    page = await ctx.newPage();
    page.on('dialog', (d) => { dialogs.push(d.message()); void d.dismiss(); });
  });
  after(async () => {
    await browser?.close();
    await running?.close();
    w?.cleanup();
  });

  it('signs in with the form and sees licenses made by real mocopy copy runs through the HTTP center; filters them by medium ID', async () => {
    const made = [copy(w.stationKeyPath), copy(w.stationKeyPath)];
    for (const m of made) {
      const r = await m.run();
      assert.equal(r.code, 0, r.stderr);
    }
    await page.goto(`${running.url}/console/`);
    assert.match(page.url(), /\/console\/sign-in$/);
    await page.getByLabel('Name', { exact: true }).fill('alice');
    await page.getByLabel('Password').fill(PW);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByRole('navigation').getByRole('link', { name: 'Licenses' }).click();
    await page.getByRole('heading', { name: 'Licenses' }).waitFor();
    const rows = page.locator('#license-rows tr');
    assert.equal(await rows.count(), 2);
    for (const m of made) assert.equal(await rows.filter({ hasText: m.hex }).count(), 1);
    await page.getByLabel('Medium ID').fill(made[0]!.hex.toUpperCase());
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/medium=/);
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().innerText(), new RegExp(made[0]!.hex));
    assert.match(await rows.first().innerText(), /15\.00/);
  });

  it('a copy made while the licenses page is open appears within 2 s', async () => {
    await page.goto(`${running.url}/console/licenses`);
    const before = await page.locator('#license-rows tr').count();
    const m = copy(w.stationKeyPath);
    const r = await m.run();
    assert.equal(r.code, 0, r.stderr);
    const t0 = Date.now();
    await page.locator('#license-rows tr', { hasText: m.hex }).waitFor({ timeout: 2000 });
    const ms = Date.now() - t0;
    assert.equal(await page.locator('#license-rows tr').count(), before + 1);
    assert.match(await page.getByRole('status').first().innerText(), /1 new license/);
    console.log(`      appeared ${ms} ms after the copy exited`);
  });

  it('Export CSV downloads rows equal to center report --json (licenses and their bills)', async () => {
    await page.goto(`${running.url}/console/licenses`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
    const file = join(w.dir, 'export.csv');
    await download.saveAs(file);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    const rep = JSON.parse((await mocopyAsync(['center', 'report', '--json', '--db', w.ledger])).stdout);
    assert.equal(rep.licenses.length, 3);
    const expected = rep.licenses.map((l: Record<string, string>) => {
      const b = rep.billing.find((x: Record<string, string>) => x.licenseId === l.id);
      return [l.id, l.requestId, l.stationId, l.contentId, l.mediumId, l.scheme, l.issuedAt, b.id, b.amount, b.billedAt].join(',');
    });
    assert.deepEqual(lines.slice(1), expected);
  });

  it('adds a station (key file downloaded once), copies with it, revokes it in the UI; mocopy copy with its key then exits 5', async () => {
    await page.goto(`${running.url}/console/stations`);
    await page.getByLabel('Station name').fill('Shop on the corner');
    await page.getByRole('button', { name: 'Add station' }).click();
    await page.getByRole('heading', { name: 'Station registered' }).waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download key file' }).click()]);
    const keyPath = join(w.dir, 'shop.key');
    await download.saveAs(keyPath);
    chmodSync(keyPath, 0o600);
    const stationId = JSON.parse(readFileSync(keyPath, 'utf8')).stationId as string;
    const ok = await copy(keyPath).run();
    assert.equal(ok.code, 0, ok.stderr);

    await page.goto(`${running.url}/console/stations`);
    const row = page.locator('tr', { hasText: stationId });
    await row.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('heading', { name: 'Revoke station Shop on the corner?' }).waitFor();
    await page.getByRole('button', { name: 'Revoke station' }).click();
    await page.getByText(/is revoked/).waitFor();
    assert.match(await page.locator('tr', { hasText: stationId }).innerText(), /revoked/);
    const refused = await copy(keyPath).run();
    assert.equal(refused.code, 5, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /revoked/);
  });

  it('names like <img src=x onerror=alert(1)> render as text and open no dialog', async () => {
    await page.goto(`${running.url}/console/stations`);
    await page.getByLabel('Station name').fill(XSS);
    await page.getByRole('button', { name: 'Add station' }).click();
    await page.getByRole('heading', { name: 'Station registered' }).waitFor();
    await page.goto(`${running.url}/console/contents`);
    await page.getByLabel('Content ID').fill('XSS-1');
    await page.getByLabel('Title').fill(XSS);
    await page.getByLabel('Price').last().fill('3.50');
    await page.getByRole('button', { name: 'Add content' }).click();
    await page.getByText('Content XSS-1 added.').waitFor();
    for (const p of ['/console/stations', '/console/contents', '/console/licenses', '/console/audit']) {
      await page.goto(running.url + p);
      assert.equal(await page.locator('img').count(), 0, `${p}: no <img> element`);
      if (p !== '/console/licenses') assert.ok((await page.locator('main').innerText()).includes(XSS), `${p}: the name as text`);
    }
    await page.waitForTimeout(300);
    assert.deepEqual(dialogs, []);
  });

  it('a POST without the CSRF token and a viewer\'s POST both get 403', async () => {
    await page.goto(`${running.url}/console/contents`);
    const post = (withCsrf: boolean, body: string) => `(async () => {
      const t = document.querySelector('meta[name="csrf-token"]').content;
      const r = await fetch('/console/contents/price', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '${body}' + (${withCsrf} ? '&_csrf=' + encodeURIComponent(t) : '') });
      return r.status;
    })()`;
    const noToken = await page.evaluate(post(false, 'id=APP-1&price=1'));
    assert.equal(noToken, 403);
    const withToken = await page.evaluate(post(true, 'id=APP-2&price=2'));
    assert.equal(withToken, 200, 'the same request with the page\'s token');
    const vctx = await browser.newContext();
    try {
      const v = await vctx.newPage();
      await v.goto(`${running.url}/console/sign-in`);
      await v.getByLabel('Name', { exact: true }).fill('victor');
      await v.getByLabel('Password').fill(PW);
      await v.getByRole('button', { name: 'Sign in' }).click();
      await v.getByRole('heading', { name: 'Overview' }).waitFor();
      await v.goto(`${running.url}/console/contents`);
      assert.equal(await v.getByRole('button', { name: 'Set price' }).count(), 0);
      const status = await v.evaluate(post(true, 'id=APP-1&price=1'));
      assert.equal(status, 403);
    } finally {
      await vctx.close();
    }
  });

  it('wrong passwords slow down: after 5 failures the form says to wait, even for the right password', async () => {
    const c = await browser.newContext();
    try {
      const p = await c.newPage();
      await p.goto(`${running.url}/console/sign-in`);
      for (let i = 0; i < 5; i++) {
        await p.getByLabel('Name', { exact: true }).fill('victor');
        await p.getByLabel('Password').fill(`not it ${i}`);
        await p.getByRole('button', { name: 'Sign in' }).click();
        await p.getByRole('alert').waitFor();
      }
      assert.match(await p.getByRole('alert').innerText(), /wait 1 s/);
      await p.getByLabel('Password').fill(PW);
      const [resp] = await Promise.all([p.waitForResponse((r) => r.url().endsWith('/console/sign-in') && r.request().method() === 'POST'), p.getByRole('button', { name: 'Sign in' }).click()]);
      if (resp.status() === 429) assert.match(await p.getByRole('alert').innerText(), /Too many failed sign-ins/);
      else assert.fail(`expected 429 right after 5 failures, got ${resp.status()} (the machine took over 1 s?)`);
      await p.waitForTimeout(1100);
      await p.getByLabel('Password').fill(PW);
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.getByRole('heading', { name: 'Overview' }).waitFor();
    } finally {
      await c.close();
    }
  });

  it('every page has no serious or critical axe-core findings at 1280 and 390 px, is reachable by keyboard, and is photographed for docs/console.md', async () => {
    const pages = [['sign-in', '/console/sign-in'], ['overview', '/console/'], ['licenses', '/console/licenses'], ['stations', '/console/stations'], ['contents', '/console/contents'], ['audit', '/console/audit']] as const;
    const found: string[] = [];
    if (backend === 'sqlite') mkdirSync(SHOTS, { recursive: true });
    for (const width of [1280, 390]) {
      for (const [name, path] of pages) {
        const c = name === 'sign-in' ? await browser.newContext({ viewport: { width, height: 800 } }) : undefined;
        const p = c ? await c.newPage() : page;
        await p.setViewportSize({ width, height: 800 });
        await p.goto(running.url + path);
        for (const v of await axe(p)) found.push(`${name} @${width}: ${v}`);
        // Nothing wider than the viewport except inside the scrolling table boxes.
        const overflow = await p.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth') as number;
        assert.ok(overflow <= 0, `${name} @${width}: the page scrolls sideways by ${overflow} px`);
        if (backend === 'sqlite') await p.screenshot({ path: join(SHOTS, `${name}-${width}.png`), fullPage: true });
        await c?.close();
      }
    }
    assert.deepEqual(found, []);
    // Keyboard: Tab from the top reaches every navigation link and the first form control.
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${running.url}/console/licenses`);
    const reached = new Set<string>();
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press('Tab');
      reached.add(await page.evaluate("(document.activeElement && document.activeElement.id) || (document.activeElement && (document.activeElement.innerText || '').trim()) || ''") as string);
    }
    for (const label of ['Skip to content', 'Overview', 'Licenses', 'Stations', 'Contents', 'Audit log', 'Sign out', 'f-station']) assert.ok(reached.has(label), `Tab reaches ${label} (reached: ${[...reached].join(', ')})`);
    await page.goto(`${running.url}/console/stations`);
    await page.getByRole('button', { name: /^Revoke/ }).first().focus();
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Revoke station' }).waitFor();
  });
});
