// Everything a user typed is shown as text: markup stored in every text field a screen shows
// (workspace, units, fields, client, event type, webhook, a receiver's answer) runs nowhere.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startServer, launch, newPage, OPERATOR_KEY } from './lib.mjs';

const MARKUP = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1"><b>bold</b>';
let server;
let browser;
let hostile;

before(async () => {
  server = await startServer();
  browser = await launch();
  // A receiver that answers with markup in its body and headers.
  hostile = createServer((req, res) => { req.resume(); res.writeHead(200, { 'X-Note': MARKUP.replace(/"/g, "'") }); res.end(MARKUP); });
  await new Promise((r) => hostile.listen(0, '127.0.0.1', r));
  await server.operator('POST', '/v1/admin/workspaces', {
    id: 'mark', name: MARKUP, type: 'channel', integrationEnabled: true,
    branches: [{ id: 'b1', name: MARKUP }], businessUnits: [{ id: 'u1', name: MARKUP }], fields: { note: MARKUP },
  });
  await server.operator('POST', '/v1/admin/workspaces', { id: 'mark-child', name: MARKUP, type: 'child', parentId: 'mark', integrationEnabled: true });
  await server.operator('POST', '/v1/admin/workspaces/mark/clients', { name: MARKUP });
  await server.operator('POST', '/v1/admin/event-types', { name: 'mark.made', description: MARKUP, sample: { text: MARKUP } });
});

after(async () => {
  await browser?.close();
  await new Promise((r) => hostile?.close(r));
  await server?.stop();
});

async function assertNothingRan(page, where) {
  await page.waitForLoadState('networkidle');
  assert.equal(await page.evaluate(() => window.__xss), undefined, `${where}: stored markup ran`);
  assert.ok((await page.locator('#main').innerText()).includes('<script>'), `${where}: the markup is shown as text`);
}

test('markup in every text field is shown, never run', async () => {
  const page = await newPage(browser);
  await page.goto(`${server.url}/console`);
  await page.getByLabel('Operator key').fill(OPERATOR_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Health' }).waitFor();
  for (const [hash, what] of [['#/workspaces', 'workspaces'], ['#/workspaces/mark', 'workspace'], ['#/event-types', 'event types']]) {
    await page.goto(`${server.url}/console/${hash}`);
    await page.locator('#main table, #main form').first().waitFor();
    await assertNothingRan(page, what);
  }

  // The portal: a webhook named with markup, the emulator against a receiver answering markup.
  const link = await server.operator('POST', '/v1/admin/workspaces/mark/portal-sessions', {});
  const portal = await newPage(browser);
  await portal.goto(link.url);
  await portal.getByText('Integration is ON.').waitFor();
  await assertNothingRan(portal, 'portal home');
  await portal.goto(`${server.url}/console/portal#/webhooks/new`);
  await portal.getByLabel('Name', { exact: true }).fill(MARKUP);
  await portal.getByLabel('Description').fill(MARKUP);
  await portal.getByLabel('Webhook URL').fill(`http://127.0.0.1:${hostile.address().port}/`);
  await portal.getByLabel(/^mark\.made/).check();
  await portal.getByLabel('Extra fields').fill('note');
  await portal.getByRole('button', { name: 'Create webhook' }).click();
  await portal.getByRole('heading', { name: MARKUP }).waitFor();
  await assertNothingRan(portal, 'webhook');
  await portal.goto(`${server.url}/console/portal#/webhooks`);
  await portal.locator('#main table').waitFor();
  await assertNothingRan(portal, 'webhook list');
  await portal.getByRole('link', { name: MARKUP }).click();
  await portal.getByRole('link', { name: 'WebHook Emulator' }).click();
  await portal.getByRole('button', { name: 'Send' }).click();
  await portal.locator('.report').waitFor();
  await assertNothingRan(portal, 'emulator report');
  assert.deepEqual(portal.errors, []);
  assert.deepEqual(page.errors, []);
});
