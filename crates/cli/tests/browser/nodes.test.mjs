// Two nodes on one PostgreSQL: a portal link used on one node cannot be used again on the
// other, and a console session opened on one node works on the other (sessions live in the
// database). Runs when the launcher passes TIDINGS_BROWSER_DATABASE_URL (a fresh schema).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, newPage, checkScreen, OPERATOR_KEY } from './lib.mjs';

const db = process.env.TIDINGS_BROWSER_DATABASE_URL;
let a;
let b;
let browser;

before(async () => {
  if (!db) return;
  a = await startServer({ TIDINGS_DATABASE_URL: db });
  b = await startServer({ TIDINGS_DATABASE_URL: db });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await a?.stop();
  await b?.stop();
});

test('sessions and one-time links hold across two nodes', { skip: db ? false : 'set TIDINGS_BROWSER_DATABASE_URL (the launcher does when TIDINGS_TEST_DATABASE_URL is set)' }, async () => {
  await a.operator('POST', '/v1/admin/workspaces', { id: 'two-nodes', name: 'Two Nodes Inc', integrationEnabled: true });
  // A link made on node A, used on node B …
  const { url } = await a.operator('POST', '/v1/admin/workspaces/two-nodes/portal-sessions', {});
  const token = url.split('#')[1];
  const onB = await newPage(browser);
  await onB.goto(`${b.url}/console/portal#${token}`);
  await onB.getByRole('heading', { level: 1, name: 'Integration · Two Nodes Inc' }).waitFor();
  await checkScreen(onB, 'portal-on-second-node');
  // … is spent on node A too.
  const again = await newPage(browser);
  await again.goto(`${a.url}/console/portal#${token}`);
  await again.getByText('This portal link was already used or has expired').waitFor();

  // The operator signs in on node A; node B knows the session (its cookie reaches both, as
  // behind one load balancer).
  const page = await newPage(browser);
  await page.goto(`${a.url}/console`);
  await page.getByLabel('Operator key').fill(OPERATOR_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Health' }).waitFor();
  await page.goto(`${b.url}/console/#/workspaces`);
  await page.getByRole('link', { name: 'Two Nodes Inc' }).waitFor();
  assert.equal(await page.getByLabel('Operator key').count(), 0, 'no second sign-in on node B');
  // A state change through node B with the session from node A.
  await page.getByRole('link', { name: 'Two Nodes Inc' }).click();
  await page.getByLabel('New client name').fill('from node B');
  await page.getByRole('button', { name: 'Create client' }).click();
  await page.getByText('Copy the secret now').waitFor();
  const clients = await a.operator('GET', '/v1/admin/workspaces/two-nodes/clients');
  assert.deepEqual(clients.data.map((c) => c.name), ['from node B']);
});
