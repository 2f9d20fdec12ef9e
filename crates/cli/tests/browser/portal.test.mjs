// The integrator portal in a real browser, as seed 000 walks through it: portal link →
// Integration on → Regenerate → a webhook through the form (a validation error first) →
// WebHook Emulator against a real receiver → a failed delivery → retry → delivered.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startReceiver, launch, newPage, checkScreen, eventually } from './lib.mjs';

let server;
let browser;
let rx;

before(async () => {
  server = await startServer();
  browser = await launch();
  rx = await startReceiver();
  await server.operator('POST', '/v1/admin/workspaces', {
    id: 'acme', name: 'Acme Facilities', branches: [{ id: '492042', name: 'Downtown' }],
    businessUnits: [{ id: 'bu-1', name: 'Provider BU' }], fields: { vatId: 'DE123' },
  });
  await server.operator('POST', '/v1/admin/workspaces', { id: 'small-co', name: 'Small Co', plan: 'basic' });
});

after(async () => {
  await browser?.close();
  await rx?.close();
  await server?.stop();
});

const nav = (page, name) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true });

async function portalLink(workspace, body = {}) {
  return (await server.operator('POST', `/v1/admin/workspaces/${workspace}/portal-sessions`, body)).url;
}

test('a company admin enables integration, configures a webhook, tests it and recovers a failed delivery', async () => {
  const page = await newPage(browser);
  await page.goto(await portalLink('acme', { returnUrl: 'https://product.example/settings' }));
  await page.getByRole('heading', { name: 'Integration · Acme Facilities' }).waitFor();
  assert.ok(!page.url().includes('token'), 'the link token leaves the address bar');
  assert.equal(await page.getByRole('switch', { name: 'Integration' }).isChecked(), false);
  await page.getByText('492042').first().waitFor();
  await checkScreen(page, 'portal-home-integration-off');

  // 2. Enable integration; 3. Regenerate credentials (shown once, and they work).
  // By keyboard: the switch takes focus and Space flips it.
  await page.getByRole('switch', { name: 'Integration' }).focus();
  await page.keyboard.press('Space');
  await page.getByText('Integration is ON.').waitFor();
  await page.getByRole('button', { name: 'Regenerate' }).click();
  await page.getByText('Copy the secret now').waitFor();
  const codes = page.locator('.secret-once code');
  const [clientId, clientSecret] = [await codes.nth(0).textContent(), await codes.nth(1).textContent()];
  const token = await fetch(`${server.url}/oauth/token`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client_id: clientId, client_secret: clientSecret, audience: server.url, grant_type: 'client_credentials' }),
  });
  assert.equal(token.status, 200, 'the regenerated credentials get a token');
  await checkScreen(page, 'portal-home');

  // 4.1 Event notifications off → the webhooks page says so; on again.
  await page.getByRole('switch', { name: 'Event Notifications (Webhooks)' }).uncheck();
  await page.getByText('Notifications are off').first().waitFor();
  await nav(page, 'Webhooks').click();
  await page.getByText('Event notifications are off for this workspace').waitFor();
  await nav(page, 'Home').click();
  await page.getByRole('switch', { name: 'Event Notifications (Webhooks)' }).check();
  await page.getByText('Notifications are on').first().waitFor();

  // 4.2 The connector form: a bad URL is refused next to the field, then the webhook is made.
  await nav(page, 'Webhooks').click();
  await page.getByRole('link', { name: 'New webhook' }).click();
  await page.getByLabel('Name', { exact: true }).fill('Work orders');
  await page.getByLabel('Webhook URL').fill('example.com/no-scheme');
  await page.getByLabel(/^workorder\.created/).check();
  await page.getByLabel(/^Downtown/).check();
  await page.getByLabel('Custom headers').fill('X-Api-Key: very-secret');
  await page.getByRole('button', { name: 'Create webhook' }).click();
  const urlError = page.locator('[data-field="url"] .error');
  await urlError.waitFor();
  assert.match(await urlError.textContent(), /absolute URL/);
  await checkScreen(page, 'portal-webhook-form');
  await page.getByLabel('Webhook URL').fill(rx.url);
  await page.getByRole('button', { name: 'Create webhook' }).click();
  await page.getByRole('heading', { name: 'Work orders' }).waitFor();
  await page.getByText('https is recommended').waitFor();
  await nav(page, 'Webhooks').click();
  await page.getByRole('link', { name: 'Work orders' }).waitFor();
  await checkScreen(page, 'portal-webhooks');
  await page.getByRole('link', { name: 'Work orders' }).click();
  await page.getByRole('heading', { name: 'Work orders' }).waitFor();

  // 4.4 The WebHook Emulator: the request that went out and the receiver's answer.
  await page.getByRole('link', { name: 'WebHook Emulator' }).click();
  await page.getByLabel('Branch').selectOption('492042');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.getByText('receiver answered 200').waitFor();
  assert.match(await page.locator('.report h2').first().textContent(), /ok.*HTTP 200/);
  assert.equal(rx.received.length, 1);
  assert.equal(JSON.parse(rx.received[0].body).type, 'workorder.created');
  assert.ok(rx.received[0].headers['webhook-signature'].startsWith('v1,'));
  assert.ok(!(await page.content()).includes('very-secret'), 'custom header values are redacted');
  await checkScreen(page, 'portal-emulator');

  // A real event that fails at the receiver (twice: the schedule has one retry).
  rx.state.status = 500;
  await server.operator('POST', '/v1/events', { type: 'workorder.created', workspaceId: 'acme', branchId: '492042', data: { Status: 'New' } });
  await eventually(() => rx.received.length >= 3, 'two failed attempts');
  await page.getByRole('link', { name: 'Back to the webhook' }).click();
  await eventually(async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    return (await page.locator('td .badge', { hasText: 'failed' }).count()) > 0;
  }, 'the failed delivery in the log');
  await page.getByText('Deliveries are failing').waitFor();
  await checkScreen(page, 'portal-webhook');

  // The failed delivery, its attempts; the receiver recovers; Retry now → delivered.
  await page.locator('td a[href^="#/deliveries/"]').first().click();
  await page.getByRole('heading', { name: /^Attempt 2/ }).waitFor();
  await checkScreen(page, 'portal-delivery');
  rx.state.status = 200;
  await page.getByRole('button', { name: 'Retry now' }).click();
  await eventually(async () => {
    await page.reload();
    return (await page.locator('dd .badge', { hasText: 'succeeded' }).count()) > 0;
  }, async () => `the retried delivery succeeds (receiver saw ${rx.received.length} requests; page: ${(await page.locator('main').innerText()).slice(0, 1500)})`);

  await nav(page, 'Certificates').click();
  assert.equal(await page.getByRole('link', { name: 'Certificates (PEM)' }).getAttribute('href'), '/v1/certificates');
  await checkScreen(page, 'portal-certificates');
  assert.equal(await page.getByRole('link', { name: 'Back to your account' }).getAttribute('href'), 'https://product.example/settings');
});

test('a plan without integration shows the upgrade state', async () => {
  const page = await newPage(browser);
  await page.goto(await portalLink('small-co'));
  await page.getByText('To enable integration mode, you must upgrade your membership level.').waitFor();
  assert.equal(await page.getByRole('switch').count(), 0);
  await checkScreen(page, 'portal-upgrade');
});

test('a portal link works once', async () => {
  const link = await portalLink('acme');
  const first = await newPage(browser);
  await first.goto(link);
  await first.getByRole('heading', { level: 1, name: /^Integration/ }).waitFor();
  const other = await newPage(browser);
  await other.goto(link);
  await other.getByText('This portal link was already used or has expired').waitFor();
  await checkScreen(other, 'portal-link-used');
});

test('a portal session sees only its own workspace', async () => {
  await server.operator('POST', '/v1/admin/workspaces', { id: 'rival', name: 'Rival', integrationEnabled: true });
  const client = await server.operator('POST', '/v1/admin/workspaces/rival/clients', {});
  const tokenResponse = await fetch(`${server.url}/oauth/token`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client_id: client.clientId, client_secret: client.clientSecret, audience: server.url, grant_type: 'client_credentials' }),
  });
  const { access_token: token } = await tokenResponse.json();
  const hook = await (await fetch(`${server.url}/v1/settings/webhooks`, {
    method: 'POST', headers: { Authorization: `Bearer ${token}`, Workspace: 'rival', 'Content-Type': 'application/json' },
    body: JSON.stringify({ applyToAllDescendants: false, url: 'https://rival.example/hook', triggers: ['workorder.created'], status: 'enabled' }),
  })).json();
  const page = await newPage(browser);
  await page.goto(await portalLink('acme'));
  await page.getByRole('heading', { level: 1, name: /^Integration/ }).waitFor();
  await page.goto(`${page.url().split('#')[0]}#/webhooks/${hook.id}`);
  await page.getByText('webhook not found').waitFor();
  const statuses = await page.evaluate(async (id) => {
    const session = await (await fetch('/console/session/portal')).json();
    const h = { Workspace: 'rival', 'X-CSRF-Token': session.csrfToken };
    const list = await fetch('/v1/settings/webhooks', { headers: h });
    const del = await fetch(`/v1/settings/webhooks/${id}`, { method: 'DELETE', headers: { ...h, Workspace: 'acme' } });
    const admin = await fetch('/v1/admin/workspaces');
    return [list.status, del.status, admin.status];
  }, hook.id);
  assert.deepEqual(statuses, [403, 404, 401]);
  page.errors.length = 0;
});
