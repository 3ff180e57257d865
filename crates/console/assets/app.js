// The console shell: session (whoami, logout, expiry), the shared live stream, and a router by
// location.pathname with the History API. Links stay real `<a href>`s; plain clicks on console
// links are routed here, modified clicks (new tab) go to the browser.

import { session, del, ApiError } from './api.js';
import { startLive, stopLive } from './live.js';
import { h, replace } from './dom.js';
import * as overview from './overview.js';
import * as events from './events.js';
import * as event from './event.js';
import * as flows from './flows.js';
import * as admin from './admin.js';

const ROUTES = [
  [/^\/ui\/?$/, 'overview', overview, 'Overview'],
  [/^\/ui\/overview\/?$/, 'overview', overview, 'Overview'],
  [/^\/ui\/events\/?$/, 'events', events, 'Events'],
  [/^\/ui\/events\/([^/]+)\/?$/, 'events', event, 'Event'],
  [/^\/ui\/flows\/?$/, 'flows', flows, 'Flows'],
  [/^\/ui\/admin\/?$/, 'admin', admin, 'Admin'],
];

const main = document.getElementById('page');
let cleanup = null;
let current = null;
let me = null;

function match(path) {
  for (const [re, nav, mod, title] of ROUTES) {
    const m = re.exec(path);
    if (m) return { nav, mod, title, args: m.slice(1).map(decodeURIComponent) };
  }
  return null;
}

/** Goes to `url` (a console path) without reloading. */
export function navigate(url, opts) {
  const u = new URL(url, location.href);
  if (u.origin !== location.origin || !u.pathname.startsWith('/ui/') || u.pathname.startsWith('/ui/login')) {
    location.assign(u.href);
    return;
  }
  if (opts && opts.replace) history.replaceState(null, '', u.pathname + u.search + u.hash);
  else history.pushState(null, '', u.pathname + u.search + u.hash);
  route(true);
}

function setNav(nav) {
  for (const a of document.querySelectorAll('nav a[data-page]')) {
    if (a.dataset.page === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function route(focus) {
  const path = location.pathname;
  const r = match(path);
  const key = path + location.search;
  if (cleanup) {
    try {
      cleanup();
    } catch (e) {
      console.error(e);
    }
    cleanup = null;
  }
  current = key;
  if (!r) {
    setNav(null);
    document.title = 'Not found · Pharos';
    replace(main, h('h1', { tabindex: -1, text: 'Page not found' }),
      h('p', null, 'No console page at ', h('code', { text: path }), '. ', h('a', { href: '/ui/', text: 'Go to the overview' }), '.'));
    return;
  }
  setNav(r.nav);
  document.title = `${r.title} · Pharos`;
  main.replaceChildren();
  const ctx = {
    session: me,
    args: r.args,
    params: new URLSearchParams(location.search),
    navigate,
    isCurrent: () => current === key,
    setTitle: (t) => {
      document.title = `${t} · Pharos`;
    },
  };
  try {
    const c = await r.mod.render(main, ctx);
    if (current === key) cleanup = typeof c === 'function' ? c : null;
    else if (typeof c === 'function') c();
  } catch (e) {
    console.error(e);
    main.append(h('p', { class: 'error', role: 'alert', text: `This page failed: ${e.message || e}` }));
  }
  if (focus) {
    const h1 = main.querySelector('h1');
    if (h1) {
      h1.setAttribute('tabindex', '-1');
      h1.focus({ preventScroll: true });
    }
    window.scrollTo(0, 0);
  }
}

function onClick(ev) {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target.closest && ev.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const u = new URL(a.href, location.href);
  if (u.origin !== location.origin || !u.pathname.startsWith('/ui/') || u.pathname.startsWith('/ui/login') || u.pathname.startsWith('/ui/assets/')) return;
  if (u.pathname === location.pathname && u.search === location.search && u.hash) return;
  ev.preventDefault();
  navigate(u.href);
}

async function logout() {
  const btn = document.getElementById('logout');
  btn.disabled = true;
  try {
    await del('/api/v1/session');
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      btn.disabled = false;
      alert(`Logout failed: ${e.message}`);
      return;
    }
  }
  stopLive();
  location.assign('/ui/login');
}

async function start() {
  try {
    me = await session();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      replace(main, h('p', { class: 'error', role: 'alert', text: `Cannot load the session: ${e.message}` }));
    }
    return;
  }
  document.body.dataset.role = me.role;
  document.getElementById('whoami').textContent = `${me.name} (${me.role})`;
  document.getElementById('whoami').title = me.expires_at ? `Session expires ${new Date(me.expires_at).toLocaleString()}` : '';
  document.getElementById('logout').addEventListener('click', logout);
  for (const a of document.querySelectorAll('nav a[data-page="admin"]')) {
    if (me.role !== 'admin') a.title = 'NSF inventory (tokens, subscriptions and configuration need the admin role)';
  }
  if (me.expires_at) {
    const ms = new Date(me.expires_at).getTime() - Date.now();
    if (ms > 0 && ms < 2 ** 31 - 1) {
      setTimeout(() => {
        stopLive();
        location.assign('/ui/login?expired=1&next=' + encodeURIComponent(location.pathname + location.search));
      }, ms + 1000);
    }
  }
  document.addEventListener('click', onClick);
  window.addEventListener('popstate', () => route(false));
  startLive();
  route(false);
}

start();
