// What the console's browser tests share: real `tidings serve` processes, a real receiver,
// Debian's headless Chromium through playwright-core, axe-core, and screenshots.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
export const OPERATOR_KEY = 'browser-test-operator-key-0123';
const BIN = process.env.TIDINGS_BIN || resolve('../../../../target/debug/tidings');
const SHOTS = process.env.TIDINGS_SCREENSHOTS || resolve('../../../../target/console-screenshots');

/** A free TCP port on loopback. */
function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
    s.on('error', fail);
  });
}

/** Starts `tidings serve`; `env` adds TIDINGS_* settings. Resolves once /readyz answers. */
export async function startServer(env = {}) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const data = mkdtempSync(join(tmpdir(), 'tidings-browser-'));
  const child = spawn(BIN, ['serve'], {
    env: {
      PATH: process.env.PATH,
      RUST_LOG: 'warn',
      TIDINGS_LISTEN: `127.0.0.1:${port}`,
      TIDINGS_PUBLIC_URL: url,
      TIDINGS_DATA_DIR: data,
      TIDINGS_OPERATOR_KEY: OPERATOR_KEY,
      // Nodes that share a database share the master key (a test key: the data is throwaway).
      TIDINGS_MASTER_KEY: 'dGlkaW5ncy10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=',
      TIDINGS_ALLOW_ADDRESSES: '127.0.0.0/8',
      TIDINGS_DELIVERY__RETRY_SCHEDULE: '300ms',
      TIDINGS_DELIVERY__POLL_INTERVAL: '100ms',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.ok) break;
    } catch (e) { /* not up yet */ }
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`tidings did not start (exit ${child.exitCode})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(data, { recursive: true, force: true });
    },
    /** Calls the API as the operator. */
    async operator(method, path, body) {
      const r = await fetch(`${url}${path}`, {
        method,
        headers: { Authorization: `Bearer ${OPERATOR_KEY}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      const json = text ? JSON.parse(text) : null;
      assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
      return json;
    },
  };
}

/** A webhook receiver: records what arrives, answers with `status` (changeable). */
export async function startReceiver() {
  const received = [];
  const state = { status: 200 };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(state.status, { 'Content-Type': 'text/plain' });
      res.end(`receiver answered ${state.status}`);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, received, state, close: () => new Promise((r) => server.close(r)) };
}

/** Debian's Chromium, headless, started as the machine's probe starts it. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

/** A page at 1024 px that fails the test on any script error or CSP violation. */
export async function newPage(browser, context) {
  const ctx = context || await browser.newContext({ viewport: { width: 1024, height: 800 } });
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) page.errors.push(m.text()); });
  page.on('dialog', (d) => d.accept());
  return page;
}

const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Runs axe-core on the page: no serious or critical violations; no horizontal scroll at
 * 1024 px; no script error so far. Then takes the screen's screenshot. */
export async function checkScreen(page, name) {
  await page.waitForLoadState('networkidle');
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')})`), [], `${name}: accessibility`);
  const scroll = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(scroll <= 0, `${name}: ${scroll}px of horizontal scroll at 1024 px`);
  assert.deepEqual(page.errors, [], `${name}: script errors`);
  mkdirSync(SHOTS, { recursive: true });
  await page.evaluate(() => document.getElementById('toasts')?.replaceChildren());
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Waits until `check()` is true (the server works asynchronously), at most 15 s. */
export async function eventually(check, what) {
  const deadline = Date.now() + 15000;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) {
      assert.fail(`not reached in time: ${typeof what === 'function' ? await what() : what}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
