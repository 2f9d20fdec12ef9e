// The console's entry point: finds out who is here (operator console or integrator portal),
// opens or resumes the session, draws the frame and sends each `#/…` address to its screen.

import { api, setSession, ApiError } from './api.js';
import { h, screen, field, input, showErrors, toast, failed } from './ui.js';
import * as portal from './portal.js';
import * as operator from './operator.js';

const mode = location.pathname.startsWith('/console/portal') ? 'portal' : 'operator';
const app = mode === 'portal' ? portal : operator;
let session = null;

function frame(nav) {
  const header = document.getElementById('top');
  const title = mode === 'portal' ? 'Tidings · Integration portal' : 'Tidings · Operator console';
  header.replaceChildren(
    h('a', { class: 'brand', href: '#/' }, h('img', { src: '/console/assets/favicon.svg', alt: '', width: 24, height: 24 }), title),
    nav ? h('nav', { 'aria-label': 'Main', class: 'main-nav' }, nav) : null,
    session ? h('div', { class: 'who' }, app.identity ? app.identity(session) : null,
      h('button', { type: 'button', class: 'link', onclick: signOut }, mode === 'portal' ? 'Leave' : 'Sign out')) : null);
}

async function signOut() {
  try { await api('DELETE', `/console/session/${mode}`); } catch (e) { /* gone already */ }
  session = null;
  setSession(null);
  if (mode === 'portal') ended('You left the portal.');
  else { location.hash = '#/'; loginScreen(); }
}

function loginScreen() {
  frame(null);
  const key = input('operatorKey', '', { type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'card narrow' },
    h('p', {}, 'Sign in with the operator API key (printed at the first start, or TIDINGS_OPERATOR_KEY).'),
    field({ label: 'Operator key', control: key, field: 'operatorKey' }),
    h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      session = await api('POST', '/console/session/operator', { operatorKey: key.value });
      setSession(session);
      await route();
    } catch (e) {
      showErrors(form, e.code === 'unauthorized' ? new ApiError(401, { error: { message: e.message, details: [{ field: 'operatorKey', message: e.message }] } }) : e);
    }
  });
  screen('Sign in', form);
  key.focus();
}

function ended(message) {
  frame(null);
  screen('Portal session ended',
    h('div', { class: 'card narrow' },
      h('p', {}, message),
      h('p', {}, 'Open the integration page of your account again to get a new link.')));
}

async function route() {
  if (!session) return;
  const path = location.hash.replace(/^#/, '') || '/';
  frame(app.nav(path, session));
  try {
    await app.show(path, session);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      session = null;
      if (mode === 'portal') ended('Your portal session has ended.'); else loginScreen();
      return;
    }
    screen('Something went wrong', h('p', { role: 'alert' }, e.message || String(e)));
  }
}

async function start() {
  window.addEventListener('hashchange', route);
  if (mode === 'portal') {
    const token = new URLSearchParams(location.hash.replace(/^#/, '')).get('token');
    if (token) {
      // The link's token leaves the address bar (and history) before anything else happens.
      history.replaceState(null, '', '/console/portal#/');
      try {
        session = await api('POST', '/console/session/portal', { token });
      } catch (e) {
        ended(e.code === 'portal_link_used_or_expired'
          ? 'This portal link was already used or has expired. A link works once, for a few minutes.'
          : e.message);
        return;
      }
    }
  }
  if (!session) {
    try {
      session = await api('GET', `/console/session/${mode}`);
    } catch (e) {
      if (mode === 'portal') ended('There is no portal session in this browser.'); else loginScreen();
      return;
    }
  }
  setSession(session);
  await route();
}

window.addEventListener('unhandledrejection', (ev) => failed(ev.reason || 'error'));
start().catch((e) => toast(e.message || String(e), 'bad'));
