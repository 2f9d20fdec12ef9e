// The integrator portal (seed 000's screens): the integration widget on the home page, the
// workspace's branch and business-unit ids, certificates, and the way into webhooks.

import { api, setWorkspace, currentWorkspace } from './api.js';
import { h, screen, section, toggle, copyable, table, button, toast, failed, select, nextId } from './ui.js';
import * as webhooks from './webhooks.js';
import * as deliveries from './deliveries.js';

/** The portal's workspace as `GET /v1/portal/workspace` tells it. */
let home = null;

async function loadHome() {
  home = await api('GET', '/v1/portal/workspace');
  const own = home.workspace.id;
  const saved = sessionStorage.getItem('tidings.workspace');
  const known = [own, ...home.children.map((c) => c.id)];
  setWorkspace(known.includes(saved) ? saved : own);
  return home;
}

/** The workspace integrator screens act on, with its units. */
export function activeWorkspace() {
  const id = currentWorkspace();
  if (!home) return { id, branches: [], businessUnits: [] };
  if (id === home.workspace.id) return home.workspace;
  return home.children.find((c) => c.id === id) || home.workspace;
}

export function portalHome() {
  return home;
}

export function identity() {
  if (!home) return null;
  if (!home.children.length) return h('span', {}, `Workspace ${home.workspace.name || home.workspace.id}`);
  const id = nextId('ws');
  const options = [[home.workspace.id, `${home.workspace.name || home.workspace.id} (yours)`],
    ...home.children.map((c) => [c.id, c.name || c.id])];
  const pick = select('workspace', options, currentWorkspace(), {
    id,
    onchange: (ev) => {
      sessionStorage.setItem('tidings.workspace', ev.target.value);
      setWorkspace(ev.target.value);
      location.hash = '#/webhooks';
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    },
  });
  return h('span', { class: 'picker' }, h('label', { for: id }, 'Workspace'), pick);
}

export function nav(path) {
  const link = (href, text) => h('a', { href, 'aria-current': (path === href.slice(1) || (href !== '#/' && path.startsWith(href.slice(1)))) ? 'page' : null }, text);
  const back = home && home.returnUrl ? h('a', { href: home.returnUrl, target: '_top', rel: 'noopener' }, 'Back to your account') : null;
  return [link('#/', 'Home'), link('#/webhooks', 'Webhooks'), link('#/certificates', 'Certificates'), back];
}

export async function show(path) {
  if (!home) await loadHome();
  let m;
  if (path === '/') return showHome();
  if (path === '/certificates') return certificates();
  if (path === '/webhooks') return webhooks.list(activeWorkspace());
  if (path === '/webhooks/new') return webhooks.form(activeWorkspace(), null);
  if ((m = path.match(/^\/webhooks\/([^/]+)\/edit$/))) return webhooks.form(activeWorkspace(), decodeURIComponent(m[1]));
  if ((m = path.match(/^\/webhooks\/([^/]+)\/test$/))) return deliveries.emulator(activeWorkspace(), decodeURIComponent(m[1]));
  if ((m = path.match(/^\/webhooks\/([^/]+)$/))) return webhooks.detail(activeWorkspace(), decodeURIComponent(m[1]));
  if ((m = path.match(/^\/deliveries\/([^/]+)$/))) return deliveries.detail(decodeURIComponent(m[1]));
  return screen('Not found', h('p', {}, 'There is no such page. '), h('a', { href: '#/' }, 'Go home'));
}

async function setSwitch(body, okText) {
  try {
    home = await api('PATCH', '/v1/portal/workspace', body);
    toast(okText);
  } catch (e) {
    failed(e);
  }
  await showHome();
}

function credentialsPanel() {
  const client = home.clients[0];
  const shown = h('div', { class: 'secret-once', 'aria-live': 'polite' });
  const regenerate = button('Regenerate', async () => {
    if (client && !window.confirm('Regenerate the credentials? The current secret and every token issued with it stop working at once.')) return;
    const c = await api('POST', '/v1/portal/credentials');
    home.clients = [c];
    shown.replaceChildren(
      h('p', { class: 'notice' }, 'Copy the secret now: it is shown this once and cannot be read again.'),
      h('dl', { class: 'pairs' },
        h('dt', {}, 'Client ID'), h('dd', {}, copyable(c.clientId)),
        h('dt', {}, 'Client secret'), h('dd', {}, copyable(c.clientSecret))));
    toast('New credentials generated');
  });
  return section('Client credentials',
    h('p', {}, 'Your application requests an access token at ', h('code', {}, `${location.origin}/oauth/token`),
      ' with these credentials (OAuth 2.0 client credentials; grant_type=client_credentials).'),
    client ? h('dl', { class: 'pairs' }, h('dt', {}, 'Client ID'), h('dd', {}, copyable(client.clientId)),
      h('dt', {}, 'Secret'), h('dd', {}, client.regeneratedAt ? 'set (regenerated ' : 'set (', new Date(client.regeneratedAt || client.createdAt).toLocaleString(), ')'))
      : h('p', {}, 'No credentials yet: click Regenerate to create them.'),
    regenerate,
    h('div', { class: 'notice', role: 'note' }, h('strong', {}, 'Security notice. '),
      'You can regenerate credentials at any moment. Do so if you think that your credentials have been leaked to a third party.'),
    shown);
}

function unitsPanel(title, units) {
  return section(title, table(title, [['Name', (u) => u.name || '—'], ['Id', (u) => copyable(u.id)]], units,
    `This workspace has no ${title.toLowerCase()}.`));
}

async function showHome() {
  await loadHome();
  const ws = home.workspace;
  if (!home.plan.integration) {
    return screen('Integration',
      h('div', { class: 'card upgrade', role: 'status' },
        h('h2', {}, 'Integration is not part of your membership'),
        h('p', {}, 'To enable integration mode, you must upgrade your membership level.'),
        h('p', {}, `Current plan: ${home.plan.name}.`)));
  }
  const integration = toggle({
    label: 'Integration',
    checked: ws.integrationEnabled,
    onchange: (ev) => setSwitch({ integrationEnabled: ev.target.checked }, ev.target.checked ? 'Integration is on' : 'Integration is off'),
  });
  const parts = [section('Integration',
    h('p', {}, 'Turn integration on to use the API and receive event notifications for this workspace.'),
    integration, h('p', { class: 'state' }, `Integration is ${ws.integrationEnabled ? 'ON' : 'OFF'}.`))];
  if (ws.integrationEnabled) {
    parts.push(credentialsPanel());
    parts.push(section('Event Notifications (Webhooks)',
      h('p', {}, 'Turn notifications on to have your webhooks receive events. Turning them off pauses every webhook of this workspace at once; each keeps its own status.'),
      toggle({
        label: 'Event Notifications (Webhooks)',
        checked: ws.notificationsEnabled,
        onchange: (ev) => setSwitch({ notificationsEnabled: ev.target.checked }, ev.target.checked ? 'Notifications are on' : 'Notifications are off'),
      }),
      h('p', {}, h('a', { href: '#/webhooks' }, 'Configure webhooks'), ' · ', h('a', { href: '#/certificates' }, 'Download certificates'))));
  }
  parts.push(unitsPanel('Branches', ws.branches), unitsPanel('Business units', ws.businessUnits));
  return screen(`Integration · ${ws.name || ws.id}`, ...parts);
}

async function certificates() {
  const steps = [
    'Read the token from the Authorization: Bearer header of the notification.',
    'Find the key whose kid matches the token header in the JWKS (or use the PEM certificate bundle).',
    'Verify the EdDSA (Ed25519) signature with that key.',
    `Check iss is ${location.origin}, aud is your endpoint's origin (scheme://host:port), sub is your workspace id, and exp is in the future.`,
    'Also verify the webhook-signature header (HMAC-SHA256 with your webhook secret, Standard Webhooks) over id.timestamp.body.',
  ];
  return screen('Certificates',
    section('Download',
      h('p', {}, 'Notifications and access tokens are signed with the keys below. Fetch them again when a token names a kid you do not know.'),
      h('ul', { class: 'downloads' },
        h('li', {}, h('a', { href: '/v1/certificates', download: 'tidings-certificates.pem' }, 'Certificates (PEM)')),
        h('li', {}, h('a', { href: '/.well-known/jwks.json', download: 'jwks.json' }, 'Keys (JWKS)')))),
    section('Validating a notification token', h('ol', {}, steps.map((s) => h('li', {}, s)))));
}
