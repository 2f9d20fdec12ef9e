// The console's only way to the server: the same HTTP API as every other client, with the
// session cookie (sent by the browser) and the session's CSRF token on every state change.

let csrfToken = '';
let workspaceHeader = '';

/** An error answered by the API: the SPEC error body. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `the server answered ${status}`);
    this.status = status;
    this.code = error.code || 'unknown';
    this.details = Array.isArray(error.details) ? error.details : [];
  }
}

export function setSession(session) {
  csrfToken = session ? session.csrfToken : '';
}

/** The workspace integrator requests act on (the `Workspace` header). */
export function setWorkspace(id) {
  workspaceHeader = id || '';
}

export function currentWorkspace() {
  return workspaceHeader;
}

/** Calls the API; resolves with the JSON body (or null), rejects with an ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken;
  if (workspaceHeader && (path.startsWith('/v1/settings') || path.startsWith('/v1/deliveries')
    || path.startsWith('/v1/event-types') || path.startsWith('/v1/emulator'))) {
    headers.Workspace = workspaceHeader;
  }
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { error: { code: 'network', message: 'The server cannot be reached; check your connection and try again.' } });
  }
  const text = await response.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch (e) { json = null; }
  }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

/** Every item of a paginated list (at most `max`). */
export async function all(path, max = 1000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api('GET', `${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    items.push(...page.data);
    cursor = page.nextCursor;
  } while (cursor && items.length < max);
  return items;
}

/** `encodeURIComponent` for path segments. */
export const seg = (s) => encodeURIComponent(s);
