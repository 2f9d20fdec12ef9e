// The operator console in a real browser: sign in → health → workspace (a validation error
// first) → client → event types → events.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, newPage, checkScreen, OPERATOR_KEY } from './lib.mjs';

const nav = (page, name) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true });

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('an operator signs in, creates a workspace and a client, and finds events', async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/console`);
  await page.getByLabel('Operator key').fill('not-the-key-at-all');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('the operator key is not valid').first().waitFor();
  await checkScreen(page, 'operator-sign-in');
  // By keyboard: the key field has focus; Enter submits.
  await page.keyboard.press('Control+A');
  await page.keyboard.type(OPERATOR_KEY);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Health' }).waitFor();
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'tidings_operator');
  assert.ok(session.httpOnly, 'the session cookie is HttpOnly');
  assert.equal(session.sameSite, 'Strict');
  await checkScreen(page, 'operator-health');

  // A workspace: an id with a space is refused next to the field, then a good one.
  await nav(page, 'Workspaces').click();
  await page.getByRole('link', { name: 'New workspace' }).click();
  await page.getByLabel('Id').fill('bad id');
  await page.getByLabel('Name', { exact: true }).fill('Globex');
  await page.getByLabel('Type').selectOption('channel');
  await page.getByLabel('Branches').fill('492042 = Downtown\n492043 = Uptown');
  await page.getByRole('button', { name: 'Create workspace' }).click();
  const idError = page.locator('[data-field="id"] .error');
  await idError.waitFor();
  assert.match(await idError.textContent(), /letters, digits/);
  await checkScreen(page, 'operator-workspace-new');
  await page.getByLabel('Id').fill('globex');
  await page.getByRole('button', { name: 'Create workspace' }).click();
  await page.getByRole('heading', { name: 'Workspace Globex' }).waitFor();

  // A client of it: the secret is shown once.
  await page.getByLabel('New client name').fill('ERP');
  await page.getByRole('button', { name: 'Create client' }).click();
  await page.getByText('Copy the secret now').waitFor();
  const secret = await page.locator('.secret-once dd').nth(1).locator('code').textContent();
  assert.ok(secret.length >= 40);
  await checkScreen(page, 'operator-workspace');

  // A child under the channel shows in the tree.
  await server.operator('POST', '/v1/admin/workspaces', { id: 'globex-east', name: 'Globex East', type: 'child', parentId: 'globex' });
  await nav(page, 'Workspaces').click();
  await page.getByRole('link', { name: 'Globex East' }).waitFor();
  await checkScreen(page, 'operator-workspaces');

  // The catalog.
  await nav(page, 'Event types').click();
  await page.getByRole('link', { name: 'workorder.created' }).click();
  await page.getByLabel('Status path').waitFor();
  assert.equal(await page.getByLabel('Status path').inputValue(), '/Status');
  await checkScreen(page, 'operator-event-type');

  // Events: published through the API, found by workspace, opened with their deliveries.
  await server.operator('PATCH', '/v1/admin/workspaces/globex', { integrationEnabled: true });
  const published = await server.operator('POST', '/v1/events', { type: 'workorder.created', workspaceId: 'globex', data: { Status: 'New' } });
  await nav(page, 'Events').click();
  await page.getByLabel('Workspace id').fill('globex');
  await page.getByRole('button', { name: 'Find' }).click();
  await page.getByRole('link', { name: published.id }).click();
  await page.getByRole('heading', { name: `Event ${published.id}` }).waitFor();
  await checkScreen(page, 'operator-event');
  await nav(page, 'Events').click();
  await page.getByRole('link', { name: published.id }).waitFor();
  await checkScreen(page, 'operator-events');
});

test('state changes without the session CSRF token are refused', async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/console`);
  await page.getByLabel('Operator key').fill(OPERATOR_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Health' }).waitFor();
  // The page's own origin, the session cookie, but no X-CSRF-Token: what a forged request has.
  const status = await page.evaluate(async () => {
    const r = await fetch('/v1/admin/workspaces', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ id: 'forged', name: 'x' }) });
    return r.status;
  });
  assert.equal(status, 403);
});
