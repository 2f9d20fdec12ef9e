// The delivery log (with retry and replay), one delivery with its attempts, and the WebHook
// Emulator: what went out and what came back.

import { api, all, seg } from './api.js';
import {
  h, screen, section, field, input, select, textarea, table, badge, button, toast, showErrors,
  headerList, time,
} from './ui.js';

/** The log of a webhook: filter by state, open a delivery, retry one, replay a window. */
export async function log(webhookId) {
  const holder = h('div', {});
  const state = select('state', [['', 'All'], ['failed', 'Failed'], ['pending', 'Pending'], ['succeeded', 'Succeeded'], ['cancelled', 'Cancelled']], '');
  const draw = async () => {
    const q = state.value ? `?state=${state.value}&limit=50` : '?limit=50';
    const page = await api('GET', `/v1/settings/webhooks/${seg(webhookId)}/deliveries${q}`);
    holder.replaceChildren(table('Deliveries', [
      ['Delivery', (d) => h('a', { href: `#/deliveries/${seg(d.id)}` }, d.id)],
      ['State', (d) => badge(d.state)],
      ['Attempts', (d) => String(d.attempts)],
      ['Last result', (d) => (d.lastOutcome ? [badge(d.lastOutcome), d.lastStatus ? ` HTTP ${d.lastStatus}` : ''] : '—')],
      ['Created', (d) => time(d.createdAt)],
      ['', (d) => (d.state === 'pending' ? '' : button('Retry', async () => { await api('POST', `/v1/deliveries/${seg(d.id)}/retry`); toast('Retry queued'); await draw(); }, { class: 'small', 'aria-label': `Retry ${d.id}` }))],
    ], page.data, state.value ? `No ${state.value} deliveries.` : 'No deliveries yet.'));
  };
  state.addEventListener('change', draw);
  await draw();
  return h('div', {},
    section('Deliveries',
      h('div', { class: 'toolbar' }, h('label', { for: state.id || (state.id = 'delivery-state') }, 'Show'), state,
        button('Refresh', draw, { class: 'small' })),
      holder),
    replayForm(webhookId, draw));
}

function replayForm(webhookId, after) {
  const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  const since = input('since', local(new Date(Date.now() - 3600000)), { type: 'datetime-local', required: true });
  const until = input('until', '', { type: 'datetime-local' });
  const f = h('form', { class: 'inline-form' },
    field({ label: 'Failed since', field: 'since', control: since }),
    field({ label: 'Until (empty: now)', field: 'until', control: until }),
    h('button', { type: 'submit' }, 'Replay failed deliveries'));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { since: since.value ? new Date(since.value).toISOString() : '' };
    if (until.value) body.until = new Date(until.value).toISOString();
    try {
      const r = await api('POST', `/v1/settings/webhooks/${seg(webhookId)}/replay`, body);
      toast(`${r.replayed} failed deliveries queued again`);
      await after();
    } catch (e) { showErrors(f, e); }
  });
  return section('Replay a time window', h('p', {}, 'Sends the failed deliveries created in the window again.'), f);
}

function attemptView(a) {
  return h('article', { class: 'attempt' },
    h('h3', {}, `Attempt ${a.attemptNo} `, badge(a.outcome), a.status ? ` HTTP ${a.status}` : ''),
    h('p', {}, time(a.startedAt), ` · ${a.durationMs} ms`, a.error ? ` · ${a.error}` : ''),
    h('details', {}, h('summary', {}, 'Request headers'), headerList(a.requestHeaders)),
    h('details', {}, h('summary', {}, 'Response headers'), headerList(a.responseHeaders)),
    h('details', { open: true }, h('summary', {}, 'Response body'), h('pre', { class: 'code', tabindex: '0' }, a.responseBody || '(empty)')));
}

export async function detail(id) {
  const d = await api('GET', `/v1/deliveries/${seg(id)}`);
  return screen(`Delivery ${d.id}`,
    h('dl', { class: 'pairs' },
      h('dt', {}, 'State'), h('dd', {}, badge(d.state)),
      h('dt', {}, 'Event'), h('dd', {}, d.eventId),
      h('dt', {}, 'Webhook'), h('dd', {}, h('a', { href: `#/webhooks/${seg(d.webhookId)}` }, d.webhookId)),
      h('dt', {}, 'Created'), h('dd', {}, time(d.createdAt)),
      d.nextAttemptAt ? [h('dt', {}, 'Next attempt'), h('dd', {}, time(d.nextAttemptAt))] : null),
    h('div', { class: 'actions' }, button('Retry now', async () => {
      await api('POST', `/v1/deliveries/${seg(id)}/retry`);
      toast('Retry queued');
      await detail(id);
    })),
    section('Attempts', d.attempts.length ? d.attempts.map(attemptView) : h('p', { class: 'empty' }, 'No attempt yet.')));
}

function report(r) {
  return h('div', { class: 'report', role: 'status' },
    h('h2', {}, 'Result: ', badge(r.outcome), r.response ? ` HTTP ${r.response.status}` : '', ` · ${r.durationMs} ms`),
    r.error ? h('p', {}, r.error) : null,
    section('Request sent',
      h('p', {}, h('code', {}, `${r.request.method} ${r.request.url}`)),
      headerList(r.request.headers),
      h('pre', { class: 'code', tabindex: '0' }, r.request.body)),
    section('Response received', r.response
      ? [h('p', {}, `Status ${r.response.status}`), headerList(r.response.headers), h('pre', { class: 'code', tabindex: '0' }, r.response.body || '(empty)')]
      : h('p', {}, 'No HTTP response arrived.')));
}

/** The WebHook Emulator for a saved webhook. */
export async function emulator(ws, webhookId) {
  const [w, types] = await Promise.all([api('GET', `/v1/settings/webhooks/${seg(webhookId)}`), all('/v1/event-types')]);
  const byName = Object.fromEntries(types.map((t) => [t.name, t]));
  const kind = select('type', w.triggers.map((t) => [t, byName[t] && byName[t].description ? `${t} — ${byName[t].description}` : t]), w.triggers[0]);
  const data = textarea('data', JSON.stringify((byName[w.triggers[0]] || {}).sample || {}, null, 2), { rows: 10, spellcheck: false });
  kind.addEventListener('change', () => { data.value = JSON.stringify((byName[kind.value] || {}).sample || {}, null, 2); });
  const units = (name, list) => select(name, [['', 'None'], ...list.map((u) => [u.id, `${u.name || u.id} (id ${u.id})`])], '');
  const branch = units('branchId', ws.branches);
  const unit = units('businessUnitId', ws.businessUnits);
  const out = h('div', {});
  const f = h('form', { class: 'card form-grid' },
    field({ label: 'Event type', field: 'type', control: kind }),
    field({ label: 'Branch', field: 'branchId', control: branch }),
    field({ label: 'Business unit', field: 'businessUnitId', control: unit }),
    field({ label: 'Event data (the sample; edit it freely)', field: 'data', wide: true, control: data }),
    h('div', { class: 'wide actions' }, h('button', { type: 'submit' }, 'Send'), h('a', { href: `#/webhooks/${seg(webhookId)}` }, 'Back to the webhook')));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    let parsed;
    try { parsed = JSON.parse(data.value); } catch (e) {
      showErrors(f, { details: [{ field: 'data', message: `is not valid JSON (${e.message})` }] });
      return;
    }
    const body = { type: kind.value, data: parsed };
    if (branch.value) body.branchId = branch.value;
    if (unit.value) body.businessUnitId = unit.value;
    out.replaceChildren(h('p', { role: 'status' }, 'Sending…'));
    try {
      const r = await api('POST', `/v1/settings/webhooks/${seg(webhookId)}/test`, body);
      out.replaceChildren(report(r));
    } catch (e) {
      out.replaceChildren();
      showErrors(f, e);
    }
  });
  return screen(`WebHook Emulator · ${w.name || w.url}`,
    h('p', {}, 'Sends one notification now, exactly as a real one (signature, token, envelope), and shows what went out and what came back. Nothing is stored.'),
    f, out);
}
