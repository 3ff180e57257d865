// Reading stored messages (MessageView) and their I2NSF notifications.

import { field } from './api.js';
import { h } from './dom.js';

export const SEVERITIES = ['info', 'low', 'middle', 'high', 'critical'];
export const KINDS = ['system-alarm', 'system-event', 'traffic-flows', 'session-table',
  'system-access-log', 'resource-utilization-log', 'user-activity-log', 'dpi-log', 'ddos', 'virus',
  'intrusion', 'web-attack', 'voip-vocn', 'counters', 'botnet', 'vulnerability-scan-log',
  'firewall-traffic-log', 'generic-log'];

export const sevRank = (s) => SEVERITIES.indexOf(s);

/** The first value of member `name` (with or without a module prefix) anywhere in `obj`. */
export function find(obj, name) {
  if (!obj || typeof obj !== 'object') return undefined;
  const stack = [obj];
  while (stack.length) {
    const o = stack.shift();
    if (Array.isArray(o)) {
      stack.push(...o.filter((x) => x && typeof x === 'object'));
      continue;
    }
    for (const [k, v] of Object.entries(o)) {
      const bare = k.includes(':') ? k.slice(k.indexOf(':') + 1) : k;
      if (bare === name) return v;
    }
    for (const v of Object.values(o)) if (v && typeof v === 'object') stack.push(v);
  }
  return undefined;
}

/** An identity without its module prefix. */
export const bare = (v) => (typeof v === 'string' && /^[A-Za-z][\w.-]*:[A-Za-z][\w.-]*$/.test(v) ? v.slice(v.indexOf(':') + 1) : v);

const num = (v) => (v === undefined || v === null || v === '' ? null : Number(v));
const list = (v) => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);

/** The envelope of a notification (`pharos-i2nsf-extensions:envelope`). */
export function envelope(m) {
  return find(m && m.notification, 'envelope') || {};
}

/** DDoS fields of a message. */
export function ddos(m) {
  const n = m && m.notification;
  const rate = num(find(n, 'attack-rate'));
  const thr = num(find(n, 'attack-throughput'));
  return {
    type: bare(find(n, 'attack-type')) || 'ddos',
    start: find(n, 'start-time') || field(m, 'event-time'),
    end: find(n, 'end-time') || null,
    victims: list(find(n, 'attack-dst-ip')).map(String),
    sources: list(find(n, 'attack-src-ip')).map(String),
    dstPorts: list(find(n, 'attack-dst-port')),
    srcPorts: list(find(n, 'attack-src-port')),
    rule: find(n, 'rule-name'),
    pps: rate,
    bps: thr === null ? null : thr * 8,
  };
}

/** Whether a ddos message is an ongoing attack: no end time and not closed. */
export function ongoing(m) {
  return m.kind === 'ddos' && !ddos(m).end && m.state !== 'closed';
}

/** One line saying what a message is about. */
export function summary(m) {
  const n = m.notification;
  if (m.kind === 'ddos') {
    const d = ddos(m);
    return `${d.type} against ${d.victims.join(', ') || '?'}${d.end ? ' (ended)' : ''}`;
  }
  const parts = [];
  for (const k of ['attack-type', 'virus-name', 'alarm-category', 'event-category', 'message', 'rule-name']) {
    const v = find(n, k);
    if (v !== undefined && v !== null && typeof v !== 'object') parts.push(String(bare(v)));
    if (parts.length >= 2) break;
  }
  const src = find(n, 'src-ip');
  const dst = find(n, 'dst-ip');
  if (src || dst) parts.push(`${src || '?'} → ${dst || '?'}`);
  if (!parts.length) {
    const raw = envelope(m).raw;
    if (raw) parts.push(String(raw));
  }
  const s = parts.join(' · ');
  return s.length > 200 ? s.slice(0, 199) + '…' : s;
}

/** A severity badge. */
export function sevBadge(sev) {
  return h('span', { class: `sev sev-${SEVERITIES.includes(sev) ? sev : 'info'}`, text: sev || '?' });
}

/** A state badge (events only). */
export function stateBadge(m) {
  if (!m.state) return h('span', { class: 'muted', text: '–' });
  return h('span', { class: `state state-${m.state}`, text: m.state });
}
