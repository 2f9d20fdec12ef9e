// Building blocks of every screen. Text always goes in as text nodes (never as HTML), so
// whatever a user typed is shown, not run.

/** Creates an element: `h('a', {href: '#/'}, 'Home')`. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value') el.value = value;
    else if (key === 'checked') el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let uid = 0;
/** A unique id for label/control pairs. */
export const nextId = (prefix) => `${prefix}-${++uid}`;

/** Replaces the main area with a screen: its title (h1) and content. */
export function screen(title, ...content) {
  const main = document.getElementById('main');
  main.replaceChildren(h('h1', { tabindex: '-1', id: 'screen-title' }, title));
  append(main, content);
  document.title = `${title} · Tidings`;
  document.getElementById('screen-title').focus({ preventScroll: false });
  return main;
}

/** A labelled form field. `field` names the API field whose errors are shown here. */
export function field({ label, control, hint, field: name, wide }) {
  const id = control.id || nextId('f');
  control.id = id;
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  control.setAttribute('aria-describedby', [hintId, errorId].filter(Boolean).join(' '));
  const box = h('div', { class: wide ? 'field wide' : 'field', 'data-field': name || null },
    h('label', { for: id }, label),
    control,
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
    h('p', { class: 'error', id: errorId, hidden: true }));
  return box;
}

/** A group of checkboxes or radios with a legend. */
export function fieldset({ legend, field: name, hint, children }) {
  const errorId = nextId('e');
  return h('fieldset', { class: 'field wide', 'data-field': name || null, 'aria-describedby': errorId },
    h('legend', {}, legend),
    hint ? h('p', { class: 'hint' }, hint) : null,
    children,
    h('p', { class: 'error', id: errorId, hidden: true }));
}

export function input(name, value, attrs = {}) {
  return h('input', { name, value: value ?? '', type: 'text', ...attrs });
}

export function select(name, options, value, attrs = {}) {
  return h('select', { name, ...attrs },
    options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)));
}

export function textarea(name, value, attrs = {}) {
  return h('textarea', { name, rows: 4, ...attrs }, value ?? '');
}

/** A checkbox shown as a switch, with its label. */
export function toggle({ label, checked, onchange, disabled, name }) {
  const id = nextId('t');
  return h('div', { class: 'switch' },
    h('input', { type: 'checkbox', role: 'switch', id, name, checked, disabled, onchange }),
    h('label', { for: id }, label));
}

/** Clears the errors a form shows. */
export function clearErrors(form) {
  form.querySelectorAll('.error').forEach((p) => { p.hidden = true; p.textContent = ''; });
  form.querySelectorAll('[aria-invalid]').forEach((c) => c.removeAttribute('aria-invalid'));
  const alert = form.querySelector('.form-alert');
  if (alert) alert.remove();
}

/** The field box of an API field name: `triggers[2]` and `headers.X-Key` belong to
 * `triggers` and `headers`. */
function boxOf(form, apiField) {
  const base = apiField.split(/[.[]/)[0];
  return form.querySelector(`[data-field="${CSS.escape(apiField)}"]`)
    || form.querySelector(`[data-field="${CSS.escape(base)}"]`);
}

/** Shows an API error on a form: each detail next to the field it names, the rest on top. */
export function showErrors(form, err) {
  clearErrors(form);
  const loose = [];
  let first = null;
  for (const d of err.details || []) {
    const box = d.field ? boxOf(form, d.field) : null;
    if (!box) { loose.push(d.field ? `${d.field}: ${d.message}` : d.message); continue; }
    const p = box.querySelector('.error');
    p.hidden = false;
    p.textContent = p.textContent ? `${p.textContent} ${d.message}` : `${d.field === box.dataset.field ? '' : `${d.field}: `}${d.message}`;
    const control = box.querySelector('input, select, textarea');
    if (control) control.setAttribute('aria-invalid', 'true');
    first = first || control;
  }
  if (!(err.details || []).length || loose.length) {
    form.prepend(h('div', { class: 'form-alert', role: 'alert' },
      (err.details || []).length ? loose.join(' ') : err.message));
  }
  if (first) first.focus();
}

/** Tells the user something in the polite live region. */
export function toast(message, kind = 'ok') {
  const region = document.getElementById('toasts');
  const item = h('div', { class: `toast ${kind}` }, message);
  region.append(item);
  while (region.children.length > 3) region.firstElementChild.remove();
  setTimeout(() => item.remove(), 5000);
}

/** Shows an error in the live region (for actions outside a form). */
export function failed(err) {
  toast(err.message || String(err), 'bad');
}

/** A time as the user's locale shows it, with the exact value in `title`. */
export function time(iso) {
  if (!iso) return h('span', {}, '—');
  const d = new Date(iso);
  return h('time', { datetime: iso, title: iso }, d.toLocaleString());
}

/** A state or outcome as a coloured label with its word. */
export function badge(text) {
  const good = ['succeeded', 'ok', 'enabled', 'on'];
  const bad = ['failed', 'disabled', 'http_status', 'timeout', 'dns', 'connect', 'tls', 'blocked_address', 'too_large', 'protocol', 'cancelled'];
  const cls = good.includes(text) ? 'good' : bad.includes(text) ? 'bad' : 'neutral';
  return h('span', { class: `badge ${cls}` }, text);
}

/** Text with a button that copies it. */
export function copyable(text, label = 'Copy') {
  return h('span', { class: 'copyable' },
    h('code', {}, text),
    h('button', {
      type: 'button', class: 'small', 'aria-label': `${label}: ${text}`,
      onclick: async () => {
        try { await navigator.clipboard.writeText(text); toast('Copied'); } catch (e) { toast('Select the text and copy it', 'bad'); }
      },
    }, label));
}

/** A table: `columns` are [heading, (row) => cell]. */
export function table(caption, columns, rows, empty = 'Nothing yet.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', {}, h('tr', {}, columns.map(([title]) => h('th', { scope: 'col' }, title)))),
    h('tbody', {}, rows.map((row) => h('tr', {}, columns.map(([, cell]) => h('td', {}, cell(row))))))));
}

/** A button that runs `action`, disabled while it runs; errors go to the live region. */
export function button(text, action, attrs = {}) {
  const b = h('button', { type: 'button', ...attrs }, text);
  b.addEventListener('click', async () => {
    b.disabled = true;
    try { await action(); } catch (e) { failed(e); } finally { b.disabled = false; }
  });
  return b;
}

/** A JSON value as readable text. */
export function pretty(value) {
  return h('pre', { class: 'code', tabindex: '0' }, JSON.stringify(value, null, 2));
}

/** Headers as a definition list. */
export function headerList(headers) {
  const entries = Object.entries(headers || {});
  if (!entries.length) return h('p', { class: 'empty' }, 'No headers.');
  return h('dl', { class: 'headers' }, entries.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** A section with a heading. */
export function section(title, ...content) {
  return h('section', { class: 'panel', 'aria-label': title }, h('h2', {}, title), ...content);
}

/** Links for a tab bar; the current one is marked. */
export function tabs(label, items, current) {
  return h('nav', { class: 'tabs', 'aria-label': label },
    items.map(([href, text]) => h('a', { href, 'aria-current': href === current ? 'page' : null }, text)));
}

/** Reads a form's named controls into an object. */
export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === 'checkbox') {
      if (el.dataset.list) { (out[el.name] = out[el.name] || []); if (el.checked) out[el.name].push(el.value); } else out[el.name] = el.checked;
    } else if (el.type === 'radio') { if (el.checked) out[el.name] = el.value; } else out[el.name] = el.value;
  }
  return out;
}
