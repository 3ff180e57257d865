// One shared EventSource on /api/v1/stream for the whole console: pages subscribe to its
// changes; #live-status says `live` while the stream is open and `offline` otherwise.

import { session, toLogin } from './api.js';

const listeners = new Set();
let es = null;
let lastId = null;
let retryMs = 1000;
let retryTimer = null;
let started = false;

function setStatus(open) {
  const el = document.getElementById('live-status');
  if (!el) return;
  const text = open ? 'live' : 'offline';
  if (el.textContent !== text) el.textContent = text;
  el.classList.toggle('on', open);
  el.classList.toggle('off', !open);
  el.title = open ? 'Receiving live updates' : 'Live updates interrupted; reconnecting';
}

function dispatch(change, ev) {
  if (ev.lastEventId) lastId = ev.lastEventId;
  let msg;
  try {
    msg = JSON.parse(ev.data);
  } catch {
    return;
  }
  for (const fn of listeners) {
    try {
      fn(change, msg);
    } catch (e) {
      console.error('live listener failed', e);
    }
  }
}

function connect() {
  clearTimeout(retryTimer);
  retryTimer = null;
  const url = '/api/v1/stream' + (lastId ? '?last_event_id=' + encodeURIComponent(lastId) : '');
  es = new EventSource(url, { withCredentials: true });
  es.addEventListener('open', () => {
    retryMs = 1000;
    setStatus(true);
  });
  for (const change of ['created', 'updated', 'state']) {
    es.addEventListener(change, (ev) => dispatch(change, ev));
  }
  es.addEventListener('expired', (ev) => {
    if (ev.lastEventId) lastId = ev.lastEventId;
  });
  es.addEventListener('error', () => {
    setStatus(false);
    if (es && es.readyState === EventSource.CLOSED) {
      // The browser gave up (HTTP error such as 401 or 503): check the session, retry later.
      es = null;
      session(true).then(scheduleReconnect, (e) => {
        if (e && e.status === 401) toLogin();
        else scheduleReconnect();
      });
    }
  });
}

function scheduleReconnect() {
  if (retryTimer) return;
  retryTimer = setTimeout(connect, retryMs);
  retryMs = Math.min(retryMs * 2, 30000);
}

/** Opens the shared stream (once). */
export function startLive() {
  if (started) return;
  started = true;
  setStatus(false);
  connect();
  window.addEventListener('online', () => {
    if (!es) connect();
  });
}

/** Closes the stream (logout). */
export function stopLive() {
  started = false;
  clearTimeout(retryTimer);
  if (es) es.close();
  es = null;
  setStatus(false);
}

/** Calls `fn(change, message)` for every change; returns the unsubscribe function. */
export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Whether the stream is open. */
export function isLive() {
  return !!es && es.readyState === EventSource.OPEN;
}
