/**
 * The live dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core;
 * nothing is downloaded): the page loads and lists the servers, shows a server going down when
 * its backend stops (a TCP health check notices), and a drain clicked with the token takes effect.
 *
 * scripts/ensure-chromium.sh installs Chromium when it is missing (CI starts from a fresh
 * machine); when it cannot be had, the tests are skipped and say why.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { freePort, Harness, repoRoot, sequence, type Backend } from '../harness/index.ts';
import { api, startWithAdmin, TOKEN, type AdminFulcrum } from '../helpers/admin.ts';

setDefaultTimeout(120_000);

const CHROMIUM = '/usr/bin/chromium';

// The callbacks given to waitForFunction run in the page, where `document` exists; the tests'
// own type library has no DOM, so this is the little of it they use.
declare const document: {
  querySelector(selector: string): { getAttribute(name: string): string | null; textContent: string | null; childElementCount: number } | null;
  body: { dataset: Record<string, string | undefined> };
};

function chromiumUnavailable(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const r = spawnSync('sh', [join(repoRoot, 'scripts/ensure-chromium.sh')], { encoding: 'utf8', timeout: 900_000 });
  if (existsSync(CHROMIUM)) return null;
  return `Chromium is not available at ${CHROMIUM} and scripts/ensure-chromium.sh could not install it: ${(r.stderr || r.error?.message || 'no reason given').trim()}`;
}

const unavailable = chromiumUnavailable();
if (unavailable !== null) process.stderr.write(`dashboard.test.ts: SKIPPED: ${unavailable}\n`);

describe.skipIf(unavailable !== null)(`dashboard in headless Chromium${unavailable === null ? '' : ' (skipped: Chromium unavailable)'}`, () => {
  const h = new Harness();
  let f: AdminFulcrum;
  let a: Backend;
  let b: Backend;
  let c: Backend;
  let web: number;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  const row = (s: Backend) => `tr[data-server="app/${s.address}"]`;
  const stateOf = (s: Backend) => page.getAttribute(row(s), 'data-state', { timeout: 10_000 });
  /** Waits (bounded) for the row of `s` to show one of `states`. */
  const waitState = (s: Backend, states: string[]) =>
    page.waitForFunction(
      ([sel, want]) => want.includes(document.querySelector(sel)?.getAttribute('data-state') ?? ''),
      [row(s), states] as const,
      { timeout: 20_000, polling: 100 },
    );

  beforeAll(async () => {
    a = h.identify('A');
    b = h.identify('B');
    c = h.identify('C');
    web = freePort();
    f = await startWithAdmin(h, {
      ports: [web],
      config: {
        groups: { app: { tracking: false, check: { type: 'tcp', interval: '200ms', timeout: '150ms', rise: 1, fall: 1 }, servers: [a.address, b.address, c.address] } },
        listeners: [{ name: 'web', listen: `127.0.0.1:${web}`, group: 'app' }],
      },
    });
    const profile = mkdtempSync(join(tmpdir(), 'fulcrum-chromium-'));
    h.defer(() => rmSync(profile, { recursive: true, force: true }));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 60_000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    h.defer(() => context.close());
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
    page.on('pageerror', (e) => pageErrors.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // The one failed request the tests make on purpose is the drain with a wrong token.
      if (m.type() === 'error' && !m.text().includes('status of 401')) pageErrors.push(`console error: ${m.text()} (${m.location().url})`);
    });
    await page.goto(f.base + '/');
  });

  afterAll(() => h.close());

  test('the page loads, lists every server as up, and draws graphs from the live feed', async () => {
    for (const s of [a, b, c]) await page.waitForSelector(row(s));
    expect(await page.locator('#servers tbody tr').count()).toBe(3);
    for (const s of [a, b, c]) {
      expect(await stateOf(s)).toBe('up');
      expect(await page.textContent(`${row(s)} td.address`)).toBe(s.address);
    }
    expect(await page.textContent('tr[data-listener="web"]')).toContain(`127.0.0.1:${web}`);
    expect(await page.textContent('#feed')).toBe('live');
    await sequence(web, 3);
    // Rates need two snapshots; the graph is an SVG line per server.
    await page.waitForSelector(`${row(a)} td.cps svg polyline`);
    await page.waitForSelector(`${row(a)} td.bps svg polyline`);
    await page.waitForFunction((sel) => Number(document.querySelector(sel)?.textContent) >= 1, `${row(a)} td.total`);
  });

  test('a backend that stops shows as down with why, since when, its last check and a history entry', async () => {
    await c.close();
    await waitState(c, ['down']);
    expect(await page.getAttribute(`${row(c)} td.state`, 'title')).toMatch(/tcp check/);
    const view = (await api(f.base, `/api/v1/groups/app/servers/${c.address}`)).body;
    expect(view.why).toMatch(/^tcp check .*: connect failed: /);
    expect(view.history.at(-1)).toMatchObject({ state: 'down', at: view.since });
    const cell = `${row(c)} td.why`;
    expect(await page.textContent(`${cell} .why-text`)).toBe(view.why);
    expect(await page.textContent(`${cell} .since`)).toMatch(/^down since \d\d:\d\d:\d\d \(\d+ s ago\)$/);
    expect(await page.textContent(`${row(a)} td.why .check-ok`)).toContain('last check passed: tcp check');
    expect(await page.textContent(`${row(a)} td.why .why-text`)).toBe('');
    await page.click(`${cell} summary`);
    const entry = page.locator(`${cell} ol.history li`).first();
    expect(await entry.isVisible()).toBe(true);
    expect(await entry.textContent()).toMatch(/^\d\d:\d\d:\d\d down tcp check .* failed 1 time\(s\) in a row, last: connect failed: /);
    expect(await stateOf(a)).toBe('up');
    const got = await sequence(web, 4);
    expect(got.every((n) => n === 'A' || n === 'B')).toBe(true);
  });

  test('latest connections say which server and why; connect percentiles, queues and listeners are shown', async () => {
    await sequence(web, 2);
    await page.waitForFunction(() => Number(document.querySelector('#recent tbody')?.childElementCount) >= 5);
    const recent = (await api(f.base, '/api/v1/connections/recent')).body.connections;
    const newest = recent[0];
    expect([newest.listener, newest.group, newest.why, newest.algorithm]).toEqual(['web', 'app', 'algorithm', 'roundrobin']);
    expect(newest.termination).toMatch(/^[a-z-]+$/);
    await page.waitForSelector(`#recent tr[data-connection="${newest.id}"]`);
    const cells = await page.locator(`#recent tr[data-connection="${newest.id}"] td`).allTextContents();
    expect(cells[3]).toBe(newest.server);
    expect(cells[4]).toBe('algorithm (roundrobin)');
    expect(cells[8]).toBe(newest.termination);
    await page.waitForFunction((sel) => /^[\d.]+ ms \/ [\d.]+ ms \/ [\d.]+ ms$/.test(document.querySelector(sel)?.textContent ?? ''), `${row(a)} td.latency`);
    expect((await api(f.base, `/api/v1/groups/app/servers/${a.address}`)).body.connect_ms.count).toBeGreaterThan(0);
    expect(await page.textContent('#admission-queue')).toMatch(/^Admission \(-x, -q\): 0 waiting now/);
    expect(await page.textContent('#queues tr[data-queue="app"]')).toContain('no queue');
    expect(await page.textContent('tr[data-listener="web"] td.reasons')).toBe('–');
    const shot = join(tmpdir(), 'fulcrum-dashboard-explains.png');
    await page.screenshot({ path: shot, fullPage: true });
    process.stderr.write(`dashboard screenshot: ${shot}\n`);
  });

  test('drain needs the token; with it the server shows draining and new connections avoid it', async () => {
    await page.click(`${row(a)} button[data-action="drain"]`);
    await page.waitForFunction(() => document.querySelector('#message')?.textContent?.includes('token'));
    await page.fill('#token', 'not-the-token-at-all');
    await page.click(`${row(a)} button[data-action="drain"]`);
    await page.waitForFunction(() => document.querySelector('#message')?.textContent?.includes('HTTP 401'));
    expect((await api(f.base, `/api/v1/groups/app/servers/${a.address}`)).body.admin).toBe('enabled');

    await page.fill('#token', TOKEN);
    await page.click(`${row(a)} button[data-action="drain"]`);
    await waitState(a, ['drain']);
    expect((await api(f.base, `/api/v1/groups/app/servers/${a.address}`)).body.admin).toBe('drain');
    expect(await sequence(web, 4)).toEqual(['B', 'B', 'B', 'B']);
    // Still draining after the next snapshots.
    await page.waitForFunction((t) => Number(document.body.dataset.updated) > t, Date.now());
    expect(await stateOf(a)).toBe('drain');
  });

  test('weight and enable from the page', async () => {
    await page.fill(`${row(b)} td.weight input`, '7');
    await page.click(`${row(b)} button[data-action="weight"]`);
    await page.waitForFunction(() => document.querySelector('#message')?.textContent?.includes('weight 7'));
    expect((await api(f.base, `/api/v1/groups/app/servers/${b.address}`)).body.weight).toBe(7);
    await page.click(`${row(a)} button[data-action="enable"]`);
    await waitState(a, ['up']);
    expect(new Set(await sequence(web, 4))).toEqual(new Set(['A', 'B']));
  });

  test('no script or security-policy errors in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
