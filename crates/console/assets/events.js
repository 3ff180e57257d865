// Events: search stored messages with the API's filters (times in words), newest first, paged
// by cursor; the form state lives in the URL query so a search can be linked.

import { get, field } from './api.js';
import { h, replace, table, noteRow, field as formField, errorBox, showError } from './dom.js';
import { timeEl } from './time.js';
import { onChange } from './live.js';
import { KINDS, SEVERITIES, sevRank, sevBadge, stateBadge, summary } from './msg.js';

const PARAMS = ['from', 'to', 'kind', 'severity', 'nsf', 'addr', 'text', 'state'];
const DEFAULT_FROM = 'last 24 hours';
const PAGE = 100;

function select(id, options) {
  return h('select', { id, name: id.replace('ev-', '') }, options.map(([v, t]) => h('option', { value: v, text: t })));
}

/** The row of one message. */
export function eventRow(m) {
  const href = `/ui/events/${encodeURIComponent(m.id)}`;
  return h('tr', { dataset: { eventId: m.id }, class: `sev-row-${m.severity}` },
    h('td', { class: 'nowrap' }, timeEl(field(m, 'event-time'))),
    h('td', null, sevBadge(m.severity)),
    h('td', { text: m.kind }),
    h('td', { class: 'nsf', text: field(m, 'nsf-name') || '' }),
    h('td', { class: 'summary' }, h('a', { href, text: summary(m) || `${m.kind} #${m.id}` })),
    h('td', null, stateBadge(m)));
}

export async function render(main, ctx) {
  const p = ctx.params;
  const inputs = {
    from: h('input', { id: 'ev-from', name: 'from', type: 'text', placeholder: DEFAULT_FROM, 'aria-describedby': 'ev-from-hint' }),
    to: h('input', { id: 'ev-to', name: 'to', type: 'text', placeholder: 'now' }),
    kind: select('ev-kind', [['', 'All kinds'], ...KINDS.map((k) => [k, k])]),
    severity: select('ev-severity', [['', 'Any severity'], ...SEVERITIES.map((s) => [s, `${s} or higher`])]),
    nsf: h('input', { id: 'ev-nsf', name: 'nsf', type: 'text', placeholder: 'exact NSF name' }),
    addr: h('input', { id: 'ev-addr', name: 'addr', type: 'text', placeholder: '192.0.2.7 or 198.51.100.0/24', spellcheck: 'false' }),
    text: h('input', { id: 'ev-text', name: 'text', type: 'search', placeholder: 'words in the message' }),
    state: select('ev-state', [['', 'Any state'], ['open', 'open'], ['acknowledged', 'acknowledged'], ['closed', 'closed']]),
  };
  for (const k of PARAMS) inputs[k].value = p.has(k) ? p.get(k) : k === 'from' ? DEFAULT_FROM : '';
  const search = h('button', { id: 'ev-search', type: 'submit', text: 'Search' });
  const reset = h('button', { type: 'button', class: 'secondary', text: 'Reset' });
  const form = h('form', { id: 'ev-form', class: 'search-form', role: 'search', 'aria-label': 'Search events' },
    h('div', { class: 'fields' },
      formField('From', inputs.from, 'RFC 3339, -2h, "last 2 hours", "yesterday"…'),
      formField('To', inputs.to),
      formField('Kind', inputs.kind),
      formField('Severity', inputs.severity),
      formField('NSF', inputs.nsf),
      formField('Address or prefix', inputs.addr),
      formField('Text', inputs.text),
      formField('State', inputs.state)),
    h('div', { class: 'actions' }, search, reset));
  const error = errorBox('ev-error');
  const status = h('p', { id: 'ev-status', class: 'muted', role: 'status', 'aria-live': 'polite' });
  const t = table('ev-table', 'Events, newest first', ['Time', 'Severity', 'Kind', 'NSF', 'Summary', 'State']);
  const more = h('button', { id: 'ev-more', type: 'button', class: 'secondary', hidden: true, text: 'Load more' });
  const fresh = h('button', { id: 'ev-new', type: 'button', class: 'secondary small', hidden: true });

  replace(main, h('h1', { text: 'Events' }), form, error, h('div', { class: 'toolbar' }, status, fresh),
    h('div', { class: 'scroll' }, t.table), h('p', { class: 'more' }, more));

  let cursor = null;
  let shown = 0;
  let query = null;
  let seq = 0;

  function currentParams() {
    const q = {};
    for (const k of PARAMS) {
      const v = inputs[k].value.trim();
      if (v) q[k] = v;
    }
    return q;
  }

  async function load(append) {
    const my = ++seq;
    search.disabled = true;
    more.disabled = true;
    showError(error, null);
    if (!append) status.textContent = 'Searching…';
    try {
      const r = await get('/api/v1/messages', { ...query, limit: PAGE, cursor: append ? cursor : undefined });
      if (my !== seq || !ctx.isCurrent()) return;
      const rows = (r.items || []).map(eventRow);
      if (append) t.tbody.append(...rows);
      else t.tbody.replaceChildren(...rows);
      shown = (append ? shown : 0) + rows.length;
      if (!append) {
        arrived = 0;
        fresh.hidden = true;
      }
      if (!shown) t.tbody.replaceChildren(noteRow(6, 'No event matches.'));
      cursor = r.next_cursor || null;
      more.hidden = !cursor;
      status.textContent = `${shown} event${shown === 1 ? '' : 's'} shown${cursor ? '; more available' : ''}.`;
    } catch (e) {
      if (my !== seq) return;
      showError(error, e);
      status.textContent = '';
      if (!append) {
        t.tbody.replaceChildren();
        more.hidden = true;
      }
    } finally {
      if (my === seq) {
        search.disabled = false;
        more.disabled = false;
      }
    }
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    query = currentParams();
    const u = new URLSearchParams(query);
    const url = '/ui/events' + (u.toString() ? '?' + u : '');
    if (url !== location.pathname + location.search) history.pushState(null, '', url);
    load(false);
  });
  reset.addEventListener('click', () => {
    for (const k of PARAMS) inputs[k].value = k === 'from' ? DEFAULT_FROM : '';
    form.requestSubmit();
  });
  more.addEventListener('click', () => load(true));

  // New events matching the kind, severity and NSF of the search: offer to show them.
  let arrived = 0;
  fresh.addEventListener('click', () => load(false));
  const stop = onChange((change, m) => {
    if (change !== 'created' || !query || query.to) return;
    if (query.kind && !query.kind.split(',').includes(m.kind)) return;
    if (query.severity && sevRank(m.severity) < sevRank(query.severity)) return;
    if (query.nsf && field(m, 'nsf-name') !== query.nsf) return;
    if (query.state && m.state !== query.state) return;
    arrived++;
    fresh.textContent = `${arrived} new event${arrived === 1 ? '' : 's'}: show`;
    fresh.hidden = false;
  });

  query = currentParams();
  await load(false);
  return stop;
}
