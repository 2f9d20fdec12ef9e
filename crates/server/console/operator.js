// The operator console: health, workspaces (as a tree) with their clients and the way into
// their portal, the event-type catalog, and events.

import { api, all, seg } from './api.js';
import {
  h, screen, section, field, input, select, textarea, table, badge, button, toast, showErrors,
  clearErrors, copyable, time, pretty,
} from './ui.js';
import { lineChart } from './charts.js';

export function nav(path) {
  const link = (href, text) => h('a', { href, 'aria-current': (href === '#/' ? path === '/' : path.startsWith(href.slice(1))) ? 'page' : null }, text);
  return [link('#/', 'Health'), link('#/workspaces', 'Workspaces'), link('#/event-types', 'Event types'), link('#/events', 'Events')];
}

export async function show(path) {
  let m;
  if (path === '/') return health();
  if (path === '/workspaces') return workspaces();
  if (path === '/workspaces/new') return workspaceForm(null);
  if ((m = path.match(/^\/workspaces\/([^/]+)$/))) return workspaceForm(decodeURIComponent(m[1]));
  if (path === '/event-types') return eventTypes();
  if (path === '/event-types/new') return eventTypeForm(null);
  if ((m = path.match(/^\/event-types\/([^/]+)$/))) return eventTypeForm(decodeURIComponent(m[1]));
  if (path.startsWith('/events/')) return eventDetail(decodeURIComponent(path.slice('/events/'.length)));
  if (path === '/events' || path.startsWith('/events?')) return events(new URLSearchParams(path.split('?')[1] || ''));
  return screen('Not found', h('a', { href: '#/' }, 'Go to Health'));
}

/** Opens the workspace's portal in a new tab through a fresh one-time link. */
export function openPortal(workspaceId) {
  return button('Open portal as this workspace', async () => {
    const link = await api('POST', `/v1/admin/workspaces/${seg(workspaceId)}/portal-sessions`, {});
    window.open(link.url, '_blank', 'noopener');
  });
}

async function health() {
  const data = await api('GET', '/v1/admin/health');
  const series = (key, scale = 1) => data.points.map((p) => ({ at: p.at, value: p[key] === null ? null : p[key] * scale }));
  return screen('Health',
    h('p', {}, `This node's last hour, one reading every 10 seconds (the numbers of /metrics). Store: ${data.store}.`),
    h('div', { class: 'charts' },
      lineChart('Deliveries per second', 'per s', series('deliveriesPerSecond')),
      lineChart('Success rate', '%', series('successRate', 100)),
      lineChart('Queue depth', 'deliveries', series('queueDepth')),
      lineChart('Mean attempt time', 'ms', series('meanAttemptMs'))),
    section('Failing and disabled webhooks', table('Failing and disabled webhooks', [
      ['Workspace', (w) => h('a', { href: `#/workspaces/${seg(w.workspaceId)}` }, w.workspaceId)],
      ['URL', (w) => h('span', { class: 'url' }, w.url)],
      ['Status', (w) => badge(w.status)],
      ['Why', (w) => w.disabledReason || (w.failingSince ? ['failing since ', time(w.failingSince)] : '—')],
      ['Last success', (w) => time(w.lastSuccessAt)],
    ], data.troubledWebhooks, 'No webhook is failing or disabled.')));
}

/** Workspaces in tree order: each channel followed by its children. */
function tree(list) {
  const children = {};
  for (const w of list) if (w.parentId) (children[w.parentId] = children[w.parentId] || []).push(w);
  const out = [];
  const visit = (w, depth) => { out.push({ ...w, depth }); (children[w.id] || []).forEach((c) => visit(c, depth + 1)); };
  list.filter((w) => !w.parentId || !list.some((p) => p.id === w.parentId)).forEach((w) => visit(w, 0));
  return out;
}

async function workspaces() {
  const list = await all('/v1/admin/workspaces', 5000);
  return screen('Workspaces',
    h('p', {}, h('a', { class: 'button', href: '#/workspaces/new' }, 'New workspace')),
    table('Workspaces', [
      ['Workspace', (w) => h('span', { class: `depth-${Math.min(w.depth, 3)}` }, w.depth ? '↳ ' : '', h('a', { href: `#/workspaces/${seg(w.id)}` }, w.name || w.id))],
      ['Id', (w) => h('code', {}, w.id)],
      ['Type', (w) => w.type],
      ['Plan', (w) => w.plan],
      ['Integration', (w) => badge(w.integrationEnabled ? 'on' : 'off')],
    ], tree(list), 'No workspaces yet.'));
}

const unitLines = (units) => (units || []).map((u) => (u.name ? `${u.id} = ${u.name}` : u.id)).join('\n');
const parseUnits = (text) => text.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
  const at = l.indexOf('=');
  return at < 0 ? { id: l, name: '' } : { id: l.slice(0, at).trim(), name: l.slice(at + 1).trim() };
});

async function workspaceForm(id) {
  const [ws, plans, everyone] = await Promise.all([
    id ? api('GET', `/v1/admin/workspaces/${seg(id)}`) : Promise.resolve(null),
    api('GET', '/v1/admin/plans'),
    all('/v1/admin/workspaces', 5000),
  ]);
  const v = ws || { id: '', name: '', type: 'regular', plan: (plans.data.find((p) => p.default) || {}).name, integrationEnabled: false, branches: [], businessUnits: [], fields: {} };
  const channels = everyone.filter((w) => w.type === 'channel' && w.id !== id);
  const integration = h('input', { type: 'checkbox', id: 'ws-integration', name: 'integrationEnabled', checked: v.integrationEnabled });
  const f = h('form', { class: 'card form-grid', novalidate: true },
    field({ label: 'Id', field: 'id', hint: 'Letters, digits, ".", "_" and "-"; cannot change later.', control: input('id', v.id, { required: true, readonly: Boolean(id) }) }),
    field({ label: 'Name', field: 'name', control: input('name', v.name, { required: true }) }),
    field({ label: 'Type', field: 'type', control: select('type', [['regular', 'Regular'], ['channel', 'Channel (MSP parent)'], ['child', 'Child (of a channel)']], v.type) }),
    field({ label: 'Parent channel', field: 'parentId', hint: 'Only for a child.', control: select('parentId', [['', 'None'], ...channels.map((c) => [c.id, c.name || c.id])], v.parentId || '') }),
    field({ label: 'Plan', field: 'plan', control: select('plan', plans.data.map((p) => [p.name, `${p.name}${p.integration ? '' : ' (no integration)'}, up to ${p.maxWebhooks} webhooks`]), v.plan) }),
    h('div', { class: 'field check', 'data-field': 'integrationEnabled' }, integration, h('label', { for: 'ws-integration' }, 'Integration enabled'), h('p', { class: 'error', hidden: true })),
    field({ label: 'Branches', field: 'branches', hint: 'One per line: id = name.', control: textarea('branches', unitLines(v.branches)) }),
    field({ label: 'Business units', field: 'businessUnits', hint: 'One per line: id = name.', control: textarea('businessUnits', unitLines(v.businessUnits)) }),
    field({ label: 'Company fields (JSON object)', field: 'fields', wide: true, hint: 'What webhooks can add with extraFields.', control: textarea('fields', JSON.stringify(v.fields || {}, null, 2), { rows: 6, spellcheck: false }) }),
    h('div', { class: 'wide actions' }, h('button', { type: 'submit' }, id ? 'Save' : 'Create workspace'), h('a', { href: '#/workspaces' }, 'Cancel')));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(f);
    const el = f.elements;
    let fields;
    try { fields = JSON.parse(el.fields.value || '{}'); } catch (e) {
      showErrors(f, { details: [{ field: 'fields', message: `is not valid JSON (${e.message})` }] });
      return;
    }
    const body = {
      name: el.name.value, type: el.type.value, plan: el.plan.value, integrationEnabled: integration.checked,
      branches: parseUnits(el.branches.value), businessUnits: parseUnits(el.businessUnits.value), fields,
    };
    if (el.parentId.value) body.parentId = el.parentId.value;
    try {
      if (id) {
        await api('PUT', `/v1/admin/workspaces/${seg(id)}`, { ...body, notificationsEnabled: v.notificationsEnabled });
        toast('Workspace saved');
        await workspaceForm(id);
      } else {
        const created = await api('POST', '/v1/admin/workspaces', { id: el.id.value.trim(), ...body });
        toast('Workspace created');
        location.hash = `#/workspaces/${seg(created.id)}`;
      }
    } catch (e) { showErrors(f, e); }
  });
  if (!id) return screen('New workspace', f);
  return screen(`Workspace ${v.name || v.id}`,
    h('div', { class: 'actions' }, openPortal(id),
      button('Delete workspace', async () => {
        if (!window.confirm(`Delete ${id} with its clients and webhooks?`)) return;
        await api('DELETE', `/v1/admin/workspaces/${seg(id)}`);
        toast('Workspace deleted');
        location.hash = '#/workspaces';
      }, { class: 'danger' })),
    f, await clients(id));
}

async function clients(wsId) {
  const holder = h('div', {});
  const shown = h('div', { 'aria-live': 'polite' });
  const reveal = (c, what) => shown.replaceChildren(h('div', { class: 'secret-once' },
    h('p', {}, `${what}. Copy the secret now: it is shown this once.`),
    h('dl', { class: 'pairs' }, h('dt', {}, 'Client ID'), h('dd', {}, copyable(c.clientId)), h('dt', {}, 'Client secret'), h('dd', {}, copyable(c.clientSecret)))));
  const draw = async () => {
    const list = await all(`/v1/admin/workspaces/${seg(wsId)}/clients`);
    holder.replaceChildren(table('Clients', [
      ['Name', (c) => c.name || '—'],
      ['Client ID', (c) => h('code', {}, c.clientId)],
      ['Generation', (c) => String(c.generation)],
      ['Created', (c) => time(c.createdAt)],
      ['', (c) => h('span', { class: 'actions' },
        button('Regenerate', async () => {
          if (!window.confirm('Regenerate? The old secret and its tokens stop working at once.')) return;
          reveal(await api('POST', `/v1/admin/workspaces/${seg(wsId)}/clients/${seg(c.clientId)}/regenerate`), 'Regenerated');
          await draw();
        }, { class: 'small', 'aria-label': `Regenerate ${c.clientId}` }),
        button('Delete', async () => {
          if (!window.confirm('Delete this client? Its tokens stop working at once.')) return;
          await api('DELETE', `/v1/admin/workspaces/${seg(wsId)}/clients/${seg(c.clientId)}`);
          toast('Client deleted');
          await draw();
        }, { class: 'small danger', 'aria-label': `Delete ${c.clientId}` }))],
    ], list, 'No clients yet.'));
  };
  await draw();
  const name = input('name', '', { maxlength: 256 });
  const f = h('form', { class: 'inline-form' }, field({ label: 'New client name', field: 'name', control: name }), h('button', { type: 'submit' }, 'Create client'));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      reveal(await api('POST', `/v1/admin/workspaces/${seg(wsId)}/clients`, { name: name.value }), 'Client created');
      name.value = '';
      await draw();
    } catch (e) { showErrors(f, e); }
  });
  return section('Clients', holder, f, shown);
}

async function eventTypes() {
  const list = await all('/v1/admin/event-types');
  return screen('Event types',
    h('p', {}, h('a', { class: 'button', href: '#/event-types/new' }, 'New event type')),
    table('Event types', [
      ['Name', (t) => h('a', { href: `#/event-types/${seg(t.name)}` }, t.name)],
      ['Description', (t) => t.description || '—'],
      ['Status path', (t) => (t.statusPath ? h('code', {}, t.statusPath) : '—')],
      ['Schema', (t) => (t.schema ? 'yes' : 'no')],
    ], list));
}

async function eventTypeForm(name) {
  const t = name ? await api('GET', `/v1/admin/event-types/${seg(name)}`) : { name: '', description: '', sample: {}, statusPath: '', schema: null };
  const f = h('form', { class: 'card form-grid', novalidate: true },
    field({ label: 'Name', field: 'name', control: input('name', t.name, { readonly: Boolean(name), required: true }) }),
    field({ label: 'Description', field: 'description', control: input('description', t.description) }),
    field({ label: 'Status path', field: 'statusPath', hint: 'JSON pointer into data holding the status, e.g. /Status.', control: input('statusPath', t.statusPath || '') }),
    field({ label: 'Sample data (JSON object)', field: 'sample', wide: true, control: textarea('sample', JSON.stringify(t.sample || {}, null, 2), { rows: 8, spellcheck: false }) }),
    field({ label: 'JSON Schema (optional)', field: 'schema', wide: true, hint: 'Published data must satisfy it. Empty: no check.', control: textarea('schema', t.schema ? JSON.stringify(t.schema, null, 2) : '', { rows: 6, spellcheck: false }) }),
    h('div', { class: 'wide actions' }, h('button', { type: 'submit' }, name ? 'Save' : 'Create event type'), h('a', { href: '#/event-types' }, 'Cancel')));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const el = f.elements;
    const body = { description: el.description.value, statusPath: el.statusPath.value || null };
    for (const key of ['sample', 'schema']) {
      const text = el[key].value.trim();
      if (!text) continue;
      try { body[key] = JSON.parse(text); } catch (e) {
        showErrors(f, { details: [{ field: key, message: `is not valid JSON (${e.message})` }] });
        return;
      }
    }
    try {
      if (name) await api('PUT', `/v1/admin/event-types/${seg(name)}`, body);
      else await api('POST', '/v1/admin/event-types', { name: el.name.value.trim(), ...body });
      toast('Event type saved');
      location.hash = '#/event-types';
    } catch (e) { showErrors(f, e); }
  });
  const del = name ? button('Delete event type', async () => {
    if (!window.confirm(`Delete ${name}?`)) return;
    await api('DELETE', `/v1/admin/event-types/${seg(name)}`);
    location.hash = '#/event-types';
  }, { class: 'danger' }) : null;
  return screen(name ? `Event type ${name}` : 'New event type', f, del);
}

async function events(params) {
  const el = (n, label, attrs = {}) => field({ label, field: n, control: input(n, params.get(n) || '', attrs) });
  const f = h('form', { class: 'card form-grid', role: 'search' },
    el('id', 'Event id'), el('workspaceId', 'Workspace id'), el('type', 'Event type'),
    el('since', 'Since (RFC 3339)', { placeholder: '2026-12-01T00:00:00Z' }), el('until', 'Until (RFC 3339)'),
    h('div', { class: 'wide actions' }, h('button', { type: 'submit' }, 'Find')));
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const n of ['workspaceId', 'type', 'since', 'until']) if (f.elements[n].value.trim()) q.set(n, f.elements[n].value.trim());
    const id = f.elements.id.value.trim();
    location.hash = id ? `#/events/${seg(id)}` : `#/events?${q}`;
  });
  const results = h('div', { 'aria-live': 'polite' });
  const found = [];
  const more = async (cursor) => {
    const q = new URLSearchParams(params);
    q.set('limit', '50');
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await api('GET', `/v1/admin/events?${q}`);
      found.push(...page.data);
      results.replaceChildren(table('Events', [
        ['Event', (e) => h('a', { href: `#/events/${seg(e.id)}` }, e.id)],
        ['Type', (e) => e.type], ['Workspace', (e) => e.workspaceId],
        ['Deliveries', (e) => String(e.deliveries)], ['Created', (e) => time(e.createdAt)],
      ], found, 'No events found (yet): look further back.'),
      page.nextCursor ? button('Look further back', () => more(page.nextCursor)) : h('p', {}, 'No older events.'));
    } catch (e) { showErrors(f, e); }
  };
  await more(null);
  return screen('Events', f, results);
}

async function eventDetail(id) {
  const e = await api('GET', `/v1/events/${seg(id)}`);
  return screen(`Event ${e.id}`,
    h('dl', { class: 'pairs' },
      h('dt', {}, 'Type'), h('dd', {}, e.type),
      h('dt', {}, 'Workspace'), h('dd', {}, h('a', { href: `#/workspaces/${seg(e.workspaceId)}` }, e.workspaceId)),
      h('dt', {}, 'Occurred'), h('dd', {}, time(e.occurredAt)),
      h('dt', {}, 'Created'), h('dd', {}, time(e.createdAt)),
      h('dt', {}, 'Suppressed (no echo)'), h('dd', {}, String(e.suppressed))),
    section('Data', pretty(e.data)),
    section('Deliveries', table('Deliveries', [
      ['Delivery', (d) => h('code', {}, d.id)], ['Webhook', (d) => h('code', {}, d.webhookId)],
      ['State', (d) => badge(d.state)], ['Attempts', (d) => String(d.attempts)],
      ['Last result', (d) => (d.lastOutcome ? [badge(d.lastOutcome), d.lastStatus ? ` HTTP ${d.lastStatus}` : ''] : '—')],
    ], e.deliveries, 'No webhook matched this event.')));
}
