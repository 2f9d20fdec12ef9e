// Webhooks (the seeds' "connector"): the list with each one's last result, one webhook with
// its chart and delivery log, and the form with every field of SPEC §4.

import { api, all, seg } from './api.js';
import {
  h, screen, section, field, fieldset, input, select, textarea, table, badge, button, toast,
  showErrors, clearErrors, copyable, time, formValues, nextId,
} from './ui.js';
import { barChart } from './charts.js';
import * as deliveries from './deliveries.js';
import { portalHome } from './portal.js';

/** Why the workspace's webhooks cannot hear anything right now, if they cannot. */
function pausedBanner(ws) {
  const home = portalHome();
  const own = home && home.workspace.id === ws.id ? home.workspace : null;
  if (own && !own.notificationsEnabled) {
    return h('div', { class: 'notice', role: 'status' }, 'Event notifications are off for this workspace: no webhook receives anything until you turn them on at ',
      h('a', { href: '#/' }, 'Home'), '.');
  }
  return null;
}

function integrationOff(e) {
  return screen('Webhooks', h('div', { class: 'notice', role: 'status' }, e.message, ' ',
    h('a', { href: '#/' }, 'Go to Home to turn integration on.')));
}

export async function list(ws) {
  let hooks;
  try {
    hooks = await all('/v1/settings/webhooks');
  } catch (e) {
    if (e.code === 'integration_disabled' || e.code === 'plan_upgrade_required') return integrationOff(e);
    throw e;
  }
  const last = await Promise.all(hooks.map((w) => api('GET', `/v1/settings/webhooks/${seg(w.id)}/deliveries?limit=1`)
    .then((p) => p.data[0] || null).catch(() => null)));
  const rows = hooks.map((w, i) => ({ ...w, last: last[i] }));
  return screen(`Webhooks · ${ws.name || ws.id}`,
    pausedBanner(ws),
    h('p', {}, h('a', { class: 'button', href: '#/webhooks/new' }, 'New webhook')),
    table('Webhooks', [
      ['Name', (w) => h('a', { href: `#/webhooks/${seg(w.id)}` }, w.name || w.url)],
      ['URL', (w) => h('span', { class: 'url' }, w.url)],
      ['Status', (w) => [badge(w.status), w.disabledReason ? h('span', { class: 'why' }, ` ${w.disabledReason}`) : null]],
      ['Triggers', (w) => w.triggers.join(', ')],
      ['Last delivery', (w) => (w.last ? [badge(w.last.state), ' ', w.last.lastStatus ? `HTTP ${w.last.lastStatus} ` : '', time(w.last.updatedAt)] : 'none yet')],
    ], rows, 'No webhooks yet. Create one to receive notifications.'));
}

async function statsChart(id) {
  const s = await api('GET', `/v1/settings/webhooks/${seg(id)}/stats?hours=24`);
  const buckets = s.buckets.map((b) => ({
    label: new Date(b.start).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }),
    parts: { succeeded: b.succeeded, failed: b.failed, pending: b.pending },
  }));
  return barChart('Deliveries over the last 24 hours', buckets, [['succeeded', 'ok'], ['failed', 'bad'], ['pending', 'wait']]);
}

function secretShown(title, secret) {
  return h('div', { class: 'secret-once', role: 'status' }, h('p', {}, title), copyable(secret));
}

export async function detail(ws, id) {
  const w = await api('GET', `/v1/settings/webhooks/${seg(id)}`);
  const outlet = h('div', {});
  const setStatus = (status) => button(status === 'enabled' ? 'Re-enable' : 'Disable', async () => {
    await api('PATCH', `/v1/settings/webhooks/${seg(id)}`, { status });
    toast(status === 'enabled' ? 'Webhook enabled' : 'Webhook disabled');
    await detail(ws, id);
  });
  const actions = h('div', { class: 'actions' },
    h('a', { class: 'button', href: `#/webhooks/${seg(id)}/edit` }, 'Edit'),
    h('a', { class: 'button', href: `#/webhooks/${seg(id)}/test` }, 'WebHook Emulator'),
    button('Rotate secret', async () => {
      if (!window.confirm('Rotate the secret? The current one keeps signing for 24 hours beside the new one.')) return;
      const r = await api('POST', `/v1/settings/webhooks/${seg(id)}/secret/rotate`);
      outlet.replaceChildren(secretShown(`New secret (the previous one also signs until ${new Date(r.previousSecretExpiresAt).toLocaleString()}):`, r.secret));
    }),
    setStatus(w.status === 'enabled' ? 'disabled' : 'enabled'),
    button('Delete', async () => {
      if (!window.confirm(`Delete the webhook ${w.name || w.url}? Its pending deliveries are cancelled.`)) return;
      await api('DELETE', `/v1/settings/webhooks/${seg(id)}`);
      toast('Webhook deleted');
      location.hash = '#/webhooks';
    }, { class: 'danger' }));
  const latest = (await api('GET', `/v1/settings/webhooks/${seg(id)}/deliveries?limit=1`)).data[0];
  const failing = latest && (latest.state === 'failed' || (latest.state === 'pending' && latest.attempts > 0));
  let problem = null;
  if (w.status === 'disabled' && w.disabledReason) {
    problem = h('div', { class: 'notice bad', role: 'alert' }, h('strong', {}, 'Tidings disabled this webhook: '), w.disabledReason, ' ', setStatus('enabled'));
  } else if (w.status === 'enabled' && failing) {
    problem = h('div', { class: 'notice bad', role: 'status' }, h('strong', {}, 'Deliveries are failing: '),
      `the last attempt ended with ${latest.lastOutcome}${latest.lastStatus ? ` (HTTP ${latest.lastStatus})` : ''}. `,
      'Open the delivery below to see the answer; Tidings retries on its schedule and disables a webhook that fails for 5 days.');
  }
  const chart = await statsChart(id).catch(() => null);
  const log = await deliveries.log(id);
  return screen(w.name || 'Webhook',
    pausedBanner(ws),
    problem,
    h('dl', { class: 'pairs' },
      h('dt', {}, 'URL'), h('dd', { class: 'url' }, w.url),
      h('dt', {}, 'Status'), h('dd', {}, badge(w.status)),
      h('dt', {}, 'Triggers'), h('dd', {}, w.triggers.join(', ')),
      h('dt', {}, 'Id'), h('dd', {}, copyable(w.id)),
      h('dt', {}, 'Secret'), h('dd', {}, copyable(w.secret))),
    actions, outlet, chart ? section('History', chart) : null, log);
}

const lines = (text) => text.split('\n').map((l) => l.trim()).filter(Boolean);

/** `name: value` lines → object; problems → {field, message} for the form. */
function parsePairs(text, sep, fieldName, example) {
  const out = {};
  const problems = [];
  lines(text).forEach((l, i) => {
    const at = l.indexOf(sep);
    if (at <= 0) problems.push({ field: fieldName, message: `line ${i + 1}: write it as ${example}` });
    else out[l.slice(0, at).trim()] = l.slice(at + sep.length).trim();
  });
  return { out, problems };
}

function checkboxes(name, items, chosen, describe) {
  return items.map((it) => {
    const id = nextId('c');
    return h('div', { class: 'check' },
      h('input', { type: 'checkbox', id, name, value: it.id, 'data-list': '1', checked: chosen.includes(it.id) }),
      h('label', { for: id }, describe(it)));
  });
}

export async function form(ws, id) {
  const [w, types] = await Promise.all([
    id ? api('GET', `/v1/settings/webhooks/${seg(id)}`) : Promise.resolve(null),
    all('/v1/event-types'),
  ]);
  const v = w || { applyToAllDescendants: false, status: 'enabled', triggers: [], contentType: 'application/json', authorization: 'bearer', basicUsername: 'tidings', sslVerification: 'enabled', dataMode: 'everything', envelope: 'flat', extraFields: [], fieldMapping: {}, headers: {}, businessUnits: [], branches: [] };
  const auth = select('authorization', [['bearer', 'Bearer token signed by Tidings'], ['basic', 'Basic (username and secret)'], ['none', 'None (signature only)']], v.authorization);
  const basicUser = field({ label: 'Basic username', field: 'basicUsername', control: input('basicUsername', v.basicUsername) });
  const syncAuth = () => { basicUser.hidden = auth.value !== 'basic'; };
  auth.addEventListener('change', syncAuth);
  const f = h('form', { class: 'card form-grid', novalidate: true },
    field({ label: 'Name', field: 'name', control: input('name', v.name, { maxlength: 256 }) }),
    field({ label: 'Description', field: 'description', control: input('description', v.description) }),
    field({ label: 'Webhook URL', field: 'url', wide: true, hint: 'Absolute URL with its protocol, e.g. https://example.com/webhook. HTTPS is recommended: it is more secure.', control: input('url', v.url, { type: 'url', required: true, inputmode: 'url', placeholder: 'https://example.com/webhook' }) }),
    field({ label: 'Status', field: 'status', control: select('status', [['enabled', 'Enabled'], ['disabled', 'Disabled']], v.status) }),
    field({ label: 'Content type', field: 'contentType', control: select('contentType', [['application/json', 'application/json'], ['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded']], v.contentType) }),
    fieldset({ legend: 'Triggers', field: 'triggers', hint: 'The events that send a notification.', children: checkboxes('triggers', types.map((t) => ({ ...t, id: t.name })), v.triggers, (t) => [h('strong', {}, t.name), t.description ? ` — ${t.description}` : '']) }),
    fieldset({ legend: 'Business units', field: 'businessUnits', hint: 'None selected: every business unit.', children: ws.businessUnits.length ? checkboxes('businessUnits', ws.businessUnits, v.businessUnits, (u) => `${u.name || u.id} (id ${u.id})`) : h('p', { class: 'empty' }, 'This workspace has no business units.') }),
    fieldset({ legend: 'Branches', field: 'branches', hint: 'None selected: every branch.', children: ws.branches.length ? checkboxes('branches', ws.branches, v.branches, (u) => `${u.name || u.id} (id ${u.id})`) : h('p', { class: 'empty' }, 'This workspace has no branches.') }),
    field({ label: 'Authorization', field: 'authorization', control: auth }),
    basicUser,
    field({ label: 'Secret', field: 'secret', hint: id ? 'Leave empty to keep the current secret; use Rotate secret on the webhook to change it with an overlap.' : 'Signs every notification (and is the Basic password). Leave empty to have one generated.', control: input('secret', '', { type: 'password', autocomplete: 'new-password' }) }),
    field({ label: 'SSL verification', field: 'sslVerification', control: select('sslVerification', [['enabled', 'Enable SSL verification'], ['disabled', 'Disable SSL verification']], v.sslVerification) }),
    field({ label: 'Data to receive', field: 'dataMode', control: select('dataMode', [['everything', 'Send me everything'], ['statusOnly', 'Only update status']], v.dataMode) }),
    field({ label: 'Envelope', field: 'envelope', control: select('envelope', [['flat', 'Flat: {id, timestamp, workspaceId, type, data}'], ['header', 'Header: {Header: {...}, fields of data}']], v.envelope) }),
    field({ label: 'Extra fields', field: 'extraFields', hint: 'Workspace fields to add under data.company, one name per line.', control: textarea('extraFields', v.extraFields.join('\n')) }),
    field({ label: 'Field mapping', field: 'fieldMapping', hint: 'One per line: property = /json/pointer into the event, e.g. state = /data/Status.', control: textarea('fieldMapping', Object.entries(v.fieldMapping).map(([k, p]) => `${k} = ${p}`).join('\n')) }),
    field({ label: 'Custom headers', field: 'headers', hint: 'One per line: Name: value.', control: textarea('headers', Object.entries(v.headers).map(([k, x]) => `${k}: ${x}`).join('\n')) }),
    h('div', { class: 'field wide check', 'data-field': 'applyToAllDescendants' },
      h('input', { type: 'checkbox', id: 'apply-desc', name: 'applyToAllDescendants', checked: v.applyToAllDescendants }),
      h('label', { for: 'apply-desc' }, 'Apply to all descendants (also receive the events of child workspaces)'),
      h('p', { class: 'error', hidden: true })),
    h('div', { class: 'wide actions' }, h('button', { type: 'submit' }, id ? 'Save' : 'Create webhook'), h('a', { href: id ? `#/webhooks/${seg(id)}` : '#/webhooks' }, 'Cancel')));
  syncAuth();
  f.addEventListener('submit', (ev) => { ev.preventDefault(); submit(f, id); });
  return screen(id ? `Edit ${v.name || 'webhook'}` : 'New webhook', f);
}

async function submit(f, id) {
  clearErrors(f);
  const raw = formValues(f);
  const mapping = parsePairs(raw.fieldMapping, '=', 'fieldMapping', 'property = /pointer');
  const headers = parsePairs(raw.headers, ':', 'headers', 'Name: value');
  const problems = [...mapping.problems, ...headers.problems];
  if (problems.length) { showErrors(f, { message: 'Check the form.', details: problems }); return; }
  const body = {
    name: raw.name, description: raw.description, url: raw.url.trim(), status: raw.status,
    contentType: raw.contentType, triggers: raw.triggers || [], businessUnits: raw.businessUnits || [], branches: raw.branches || [],
    authorization: raw.authorization, basicUsername: raw.basicUsername, sslVerification: raw.sslVerification,
    dataMode: raw.dataMode, envelope: raw.envelope, extraFields: lines(raw.extraFields),
    fieldMapping: mapping.out, headers: headers.out, applyToAllDescendants: raw.applyToAllDescendants,
  };
  if (raw.secret) body.secret = raw.secret;
  try {
    const saved = await api(id ? 'PUT' : 'POST', id ? `/v1/settings/webhooks/${seg(id)}` : '/v1/settings/webhooks', body);
    toast(id ? 'Webhook saved' : 'Webhook created');
    for (const warning of saved.warnings || []) toast(warning, 'warn');
    location.hash = `#/webhooks/${seg(saved.id)}`;
  } catch (e) {
    showErrors(f, e);
  }
}
