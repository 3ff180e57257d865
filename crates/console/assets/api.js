// Fetch wrapper for the Pharos API: same-origin cookie, CSRF header on state-changing requests,
// redirect to the login page on 401, errors carrying the server's `error` text.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body || {};
  }
}

let sessionPromise = null;

/** The current session (`{name, role, csrf, expires_at}`), fetched once; `force` refetches. */
export function session(force) {
  if (!sessionPromise || force) {
    sessionPromise = request('GET', '/api/v1/session').catch((e) => {
      sessionPromise = null;
      throw e;
    });
  }
  return sessionPromise;
}

/** The login page URL that comes back to the current page. */
export function loginUrl() {
  const next = location.pathname + location.search;
  return '/ui/login?next=' + encodeURIComponent(next);
}

let redirecting = false;
export function toLogin() {
  if (redirecting) return;
  redirecting = true;
  location.assign(loginUrl());
}

/** A query string of the non-empty values of `params` (leading `?` included, or ''). */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    u.set(k, String(v));
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

async function request(method, path, body, opts) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const unsafe = method !== 'GET' && method !== 'HEAD';
  let csrf = null;
  if (unsafe) {
    const s = await session();
    csrf = s && s.csrf;
    if (csrf) headers['X-CSRF-Token'] = csrf;
  }
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      signal: opts && opts.signal,
    });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'the server cannot be reached: ' + (e && e.message ? e.message : e));
  }
  let data = null;
  const text = resp.status === 204 ? '' : await resp.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: text.slice(0, 500) };
    }
  }
  if (resp.status === 401 && !(opts && opts.noRedirect)) {
    toLogin();
    throw new ApiError(401, (data && data.error) || 'the session has expired; log in again', data);
  }
  if (resp.status === 403 && unsafe && !(opts && opts.retried)) {
    // A new session (a login in another tab) has a new CSRF token: retry once with it.
    const fresh = await session(true).catch(() => null);
    if (fresh && fresh.csrf && fresh.csrf !== csrf) return request(method, path, body, { ...opts, retried: true });
  }
  if (!resp.ok) {
    const msg = (data && data.error) || `${resp.status} ${resp.statusText}`;
    const err = new ApiError(resp.status, msg, data);
    err.retryAfter = Number(resp.headers.get('Retry-After')) || 0;
    throw err;
  }
  return data;
}

/** GET `path` with query `params`. */
export function get(path, params, opts) {
  return request('GET', path + qs(params), undefined, opts);
}

/** POST JSON `body` to `path`. */
export function post(path, body, opts) {
  return request('POST', path, body === undefined ? {} : body, opts);
}

/** DELETE `path`. */
export function del(path, opts) {
  return request('DELETE', path, undefined, opts);
}

export const api = { get, post, del, session, qs };

// ---- flow queries: the server runs at most 2 scans at once and answers 503 beyond, so the
// console queues its own and retries a refused one after Retry-After.

const FLOW_SLOTS = 2;
let running = 0;
const waiting = [];

function acquire() {
  if (running < FLOW_SLOTS) {
    running++;
    return Promise.resolve();
  }
  return new Promise((resolve) => waiting.push(resolve));
}

function release() {
  const next = waiting.shift();
  if (next) next();
  else running--;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** GET a flow route (`top`, `series`, `query`) through the queue, retrying 503 a few times. */
export async function flows(route, params, opts) {
  await acquire();
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        return await get('/api/v1/flows/' + route, params, opts);
      } catch (e) {
        if (e instanceof ApiError && e.status === 503 && attempt < 5) {
          await sleep(1000 * Math.max(1, Math.min(e.retryAfter || 1, 5)));
          continue;
        }
        throw e;
      }
    }
  } finally {
    release();
  }
}

/** A message field: the API writes kebab-case (`event-time`); accepts snake_case too. */
export function field(m, name) {
  if (!m) return undefined;
  if (name in m) return m[name];
  const snake = name.replace(/-/g, '_');
  return m[snake];
}
