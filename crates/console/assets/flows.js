// Flows explorer: nfdump filter with keyword completion and the parser's error caret, time
// range, top-N by a key as a table and a bar chart (drill-down from a bar to the flows list),
// one time series per top value, the flows list, and CSV export of the top table.

import { flows, ApiError } from './api.js';
import { h, replace, section, table, row, noteRow, svgEl, field as formField } from './dom.js';
import { attachCompletion } from './filter.js';
import { barChart, lineChart } from './chart.js';
import { timeEl, fmtBps, fmtPps, fmtFps, fmtBytes, fmtCount, fmtInt, fmtDuration } from './time.js';
import { rates } from './overview.js';

export const KEYS = [
  ['srcip', 'Source address'], ['dstip', 'Destination address'], ['ip', 'Either address'],
  ['srcport', 'Source port'], ['dstport', 'Destination port'], ['port', 'Either port'],
  ['proto', 'Protocol'], ['srcas', 'Source AS'], ['dstas', 'Destination AS'], ['as', 'Either AS'],
  ['exporter', 'Exporter'], ['inif', 'Input interface'], ['outif', 'Output interface'], ['tos', 'TOS'],
  ['srcip4/24', 'Source /24 (IPv4)'], ['dstip4/24', 'Destination /24 (IPv4)'],
  ['srcip6/48', 'Source /48 (IPv6)'], ['dstip6/48', 'Destination /48 (IPv6)'],
];

const PROTO_NAMES = { 1: 'icmp', 2: 'igmp', 4: 'ipip', 6: 'tcp', 17: 'udp', 41: 'ipv6', 47: 'gre', 50: 'esp', 51: 'ah', 58: 'icmp6', 89: 'ospf', 132: 'sctp' };
export const protoName = (p) => PROTO_NAMES[p] || String(p);

/** TCP flags as nfdump prints them: `...AP.SF` (C E U A P R S F). */
export function flagsText(f) {
  return 'CEUAPRSF'.split('').map((c, i) => (f & (1 << (7 - i)) ? c : '.')).join('');
}

/** The filter term selecting `value` of `key`, or null when the language has none. */
export function termFor(key, value) {
  const k = String(key).toLowerCase();
  const v = String(value);
  if (/^srcip[46]\/\d+$/.test(k)) return `src net ${v}`;
  if (/^dstip[46]\/\d+$/.test(k)) return `dst net ${v}`;
  if (/^ip[46]\/\d+$/.test(k)) return `net ${v}`;
  const base = k.replace(/[46]$/, '');
  switch (base) {
    case 'srcip': case 'src': case 'srcaddr': return v.includes('/') ? `src net ${v}` : `src ip ${v}`;
    case 'dstip': case 'dst': case 'dstaddr': return v.includes('/') ? `dst net ${v}` : `dst ip ${v}`;
    case 'ip': return v.includes('/') ? `net ${v}` : `ip ${v}`;
    case 'srcport': return `src port ${v}`;
    case 'dstport': return `dst port ${v}`;
    case 'port': return `port ${v}`;
    case 'proto': case 'protocol': return `proto ${PROTO_NAMES[v] || v}`;
    case 'srcas': return `src as ${v}`;
    case 'dstas': return `dst as ${v}`;
    case 'as': return `as ${v}`;
    case 'inif': case 'in': return `in if ${v}`;
    case 'outif': case 'out': return `out if ${v}`;
    case 'tos': return `tos ${v}`;
    default: return null;
  }
}

/** `filter` narrowed by `term`. */
export function narrow(filter, term) {
  const f = (filter || '').trim();
  if (!f || f === 'any') return term;
  return /\bor\b|\|\|/i.test(f) ? `(${f}) and ${term}` : `${f} and ${term}`;
}

/** CSV of the top rows. */
export function topCsv(key, rows) {
  const cell = (v) => {
    let s = String(v ?? '');
    if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [[key, 'bytes', 'packets', 'flows'].map(cell).join(',')];
  for (const r of rows) lines.push([r.key, r.bytes, r.packets, r.flows].map(cell).join(','));
  return lines.join('\r\n') + '\r\n';
}

const DEFAULTS = { filter: '', from: '-1h', to: '', key: 'dstip', by: 'bytes', n: '10' };
const FIELDS = Object.keys(DEFAULTS);

export async function render(main, ctx) {
  const p = ctx.params;
  const filter = h('input', { id: 'fl-filter', name: 'filter', type: 'text', class: 'mono wide', placeholder: 'e.g. proto udp and dst port 53', 'aria-describedby': 'fl-filter-hint fl-error' });
  const completions = h('ul', { id: 'fl-completions', class: 'completions' });
  const from = h('input', { id: 'fl-from', name: 'from', type: 'text', placeholder: '-1h' });
  const to = h('input', { id: 'fl-to', name: 'to', type: 'text', placeholder: 'now' });
  const key = h('select', { id: 'fl-key', name: 'key' }, KEYS.map(([v, t]) => h('option', { value: v, text: `${v}: ${t}` })));
  const by = h('select', { id: 'fl-by', name: 'by' }, ['bytes', 'packets', 'flows'].map((v) => h('option', { value: v, text: v })));
  const n = h('input', { id: 'fl-n', name: 'n', type: 'number', min: 1, max: 1000, step: 1, class: 'short' });
  const run = h('button', { id: 'fl-run', type: 'submit', text: 'Run' });
  const inputs = { filter, from, to, key, by, n };
  for (const k of FIELDS) inputs[k].value = p.has(k) ? p.get(k) : DEFAULTS[k];
  if (p.has('key') && ![...key.options].some((o) => o.value === p.get('key'))) key.append(h('option', { value: p.get('key'), text: p.get('key') }));
  if (p.has('key')) key.value = p.get('key');

  const errMsg = h('p', { class: 'error-text' });
  const errCaret = h('pre', { class: 'caret mono', 'aria-hidden': 'true' });
  const error = h('div', { id: 'fl-error', class: 'error filter-error', role: 'alert', hidden: true }, errMsg, errCaret);

  const form = h('form', { id: 'fl-form', class: 'search-form', role: 'search', 'aria-label': 'Query flows' },
    h('div', { class: 'field filter-field' },
      h('label', { for: 'fl-filter', text: 'Filter (nfdump syntax)' }),
      h('div', { class: 'combo' }, filter, completions),
      h('small', { id: 'fl-filter-hint', class: 'hint', text: 'Keywords complete as you type: ↑/↓ to choose, Enter or Tab to accept, Ctrl+Space to list. Empty: every flow.' })),
    error,
    h('div', { class: 'fields' },
      formField('From', from), formField('To', to), formField('Top by key', key),
      formField('Order by', by), formField('Rows', n)),
    h('div', { class: 'actions' }, run));
  attachCompletion(filter, completions);
  filter.addEventListener('input', () => {
    if (!error.hidden) showFilterError(null);
  });

  const status = h('p', { id: 'fl-status', class: 'muted', role: 'status', 'aria-live': 'polite' });
  const csv = h('button', { id: 'fl-csv', type: 'button', class: 'secondary', disabled: true, text: 'Download CSV' });
  const topChart = svgEl('fl-top-chart', 'Top values');
  const topT = table('fl-top-table', 'Top values', ['Value', 'Bytes', 'Packets', 'Flows', 'Share'], new Set([1, 2, 3, 4]));
  const seriesChart = svgEl('fl-series-chart', 'Time series per top value');
  const listHead = h('h2', { id: 'fl-list-h', tabindex: -1, text: 'Flows' });
  const listNote = h('p', { class: 'muted small', id: 'fl-list-note' });
  const listT = table('fl-list', null, ['Start', 'Duration', 'Proto', 'Source', 'Destination', 'Packets', 'Bytes', 'Flags', 'Exporter'], new Set([5, 6]));

  replace(main,
    h('h1', { text: 'Flows' }), form, status,
    section('Top values', 'sec-top',
      h('div', { class: 'toolbar' }, csv, h('span', { class: 'muted small', text: 'Click a bar or press Enter on it to drill down.' })),
      topChart, h('div', { class: 'scroll' }, topT.table)),
    section('Over time', 'sec-series', seriesChart),
    h('section', { class: 'card', 'aria-labelledby': 'fl-list-h' }, listHead, listNote, h('div', { class: 'scroll' }, listT.table)));

  let top = null;
  let seq = 0;

  function values() {
    const v = {};
    for (const k of FIELDS) v[k] = inputs[k].value.trim();
    const nn = Math.max(1, Math.min(1000, parseInt(v.n, 10) || 10));
    v.n = String(nn);
    return v;
  }

  function pushUrl(v) {
    const u = new URLSearchParams();
    for (const k of FIELDS) if (v[k] && v[k] !== DEFAULTS[k]) u.set(k, v[k]);
    const url = '/ui/flows' + (u.toString() ? '?' + u : '');
    if (url !== location.pathname + location.search) history.pushState(null, '', url);
  }

  function showFilterError(e, text) {
    if (!e) {
      error.hidden = true;
      error.removeAttribute('data-column');
      filter.removeAttribute('aria-invalid');
      return;
    }
    const body = (e instanceof ApiError && e.body) || {};
    const det = (Array.isArray(body.details) && body.details.find((d) => d && d.column)) || {};
    const column = Number(body.column ?? det.column) || 0;
    const isFilter = column > 0 || /^filter/i.test(e.message);
    errMsg.textContent = e.message;
    if (isFilter && column > 0) {
      const line = Number(body.line ?? det.line) || 1;
      const lineText = (text.split('\n')[line - 1] || '').replace(/\r$/, '');
      const pad = Array.from(lineText).slice(0, column - 1).map((c) => (c === '\t' ? '\t' : ' ')).join('');
      errCaret.textContent = `${lineText}\n${pad}^`;
      errCaret.hidden = false;
      error.dataset.column = String(column);
      filter.setAttribute('aria-invalid', 'true');
      const idx = text.split('\n').slice(0, line - 1).join('\n').length + (line > 1 ? 1 : 0) + column - 1;
      try {
        filter.setSelectionRange(idx, idx);
      } catch {
        // not a text field state that has a selection
      }
    } else {
      errCaret.textContent = '';
      errCaret.hidden = true;
      error.removeAttribute('data-column');
    }
    error.hidden = false;
  }

  function metricFmt(m) {
    return m === 'bytes' ? fmtBps : m === 'packets' ? fmtPps : fmtFps;
  }

  function drawTop(v, r) {
    top = { key: v.key, rows: r.rows || [] };
    const total = r.total ? Number(r.total[v.by]) || 0 : 0;
    const fmt = v.by === 'bytes' ? fmtBytes : v.by === 'packets' ? (x) => fmtCount(x) + ' packets' : (x) => fmtInt(x) + ' flows';
    const canDrill = termFor(v.key, '0') !== null;
    barChart(topChart, {
      label: `Top ${v.key} by ${v.by}`,
      bars: top.rows.map((x) => ({ label: v.key === 'proto' ? protoName(x.key) : String(x.key), key: String(x.key), value: Number(x[v.by]) || 0 })),
      format: fmt,
      onSelect: canDrill ? (b) => drill(v.key, b.key) : null,
      empty: 'No flow matches.',
    });
    const rows = top.rows.map((x) => {
      const term = termFor(v.key, x.key);
      const label = v.key === 'proto' ? `${protoName(x.key)} (${x.key})` : String(x.key);
      const cell = term
        ? h('a', {
          href: `/ui/flows?${new URLSearchParams({ ...v, filter: narrow(v.filter, term) })}`,
          text: label,
          title: `Drill down: ${term}`,
          on: {
            click: (ev) => {
              if (ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey) return;
              ev.preventDefault();
              ev.stopPropagation();
              drill(v.key, x.key);
            },
          },
        })
        : label;
      return row([cell, fmtBytes(x.bytes), fmtCount(x.packets), fmtInt(x.flows),
        total ? `${((Number(x[v.by]) / total) * 100).toFixed(1)} %` : '–'], { dataset: { value: String(x.key) } }, new Set([1, 2, 3, 4]));
    });
    topT.tbody.replaceChildren(...(rows.length ? rows : [noteRow(5, 'No flow matches.')]));
    csv.disabled = !top.rows.length;
    return r;
  }

  function drawSeries(v, r) {
    const m = v.by === 'bytes' ? 'bps' : v.by === 'packets' ? 'pps' : 'fps';
    const keyed = (r.keys || []).map((k, i) => ({
      name: v.key === 'proto' ? protoName(k.key) : String(k.key), cls: `s${i % 8}`, points: rates(k.points, r.interval_ms, m),
    }));
    const series = keyed.length ? keyed : [{ name: 'All flows', cls: 's0', points: rates(r.points, r.interval_ms, m) }];
    lineChart(seriesChart, {
      series, yFormat: metricFmt(v.by),
      label: `${v.by === 'bytes' ? 'Bits' : v.by === 'packets' ? 'Packets' : 'Flows'} per second per top ${v.key}`,
      empty: 'No flow matches.',
    });
  }

  function drawList(r, v) {
    const list = r.flows || [];
    const rows = list.map((f) => row([
      timeEl(f.start_ms),
      fmtDuration(Math.max(0, (f.end_ms || f.start_ms) - f.start_ms)),
      protoName(f.proto),
      `${f.src_addr}${f.src_port || f.proto === 6 || f.proto === 17 ? ':' + f.src_port : ''}`,
      `${f.dst_addr}${f.dst_port || f.proto === 6 || f.proto === 17 ? ':' + f.dst_port : ''}`,
      fmtInt(f.packets), fmtBytes(f.bytes),
      h('span', { class: 'mono', text: f.proto === 6 ? flagsText(f.tcp_flags) : '' }),
      f.exporter,
    ], null, new Set([5, 6])));
    listT.tbody.replaceChildren(...(rows.length ? rows : [noteRow(9, 'No flow matches.')]));
    listNote.textContent = `${list.length} largest flows by ${v.by === 'packets' ? 'packets' : 'bytes'}${v.filter ? ` matching “${v.filter}”` : ''}` +
      (r.stats ? `; ${fmtInt(r.stats.rows_matched)} of ${fmtInt(r.stats.rows_scanned)} scanned flows matched.` : '.');
  }

  async function execute(v, opts) {
    const my = ++seq;
    run.disabled = true;
    showFilterError(null);
    status.textContent = 'Running…';
    const base = { filter: v.filter, from: v.from, to: v.to };
    const span = guessSpan(v.from, v.to);
    const interval = span <= 15 * 60e3 ? '10s' : span <= 3 * 3600e3 ? '1m' : span <= 2 * 86400e3 ? '10m' : '1h';
    try {
      const [t, s] = await Promise.all([
        flows('top', { ...base, key: v.key, by: v.by, n: v.n }),
        flows('series', { ...base, key: v.key, by: v.by, n: Math.min(Number(v.n), 8), interval }),
      ]);
      if (my !== seq || !ctx.isCurrent()) return;
      drawTop(v, t);
      drawSeries(v, s);
      status.textContent = `${fmtInt(t.distinct)} distinct values of ${v.key}; ${fmtInt(t.total.flows)} flows, ${fmtBytes(t.total.bytes)}, ${fmtCount(t.total.packets)} packets.`;
      listNote.textContent = 'Loading…';
      const l = await flows('query', { ...base, limit: 100, order: v.by === 'packets' ? 'packets' : 'bytes' });
      if (my !== seq || !ctx.isCurrent()) return;
      drawList(l, v);
      if (opts && opts.focusList) {
        listHead.focus();
        listHead.scrollIntoView({ block: 'start' });
      }
    } catch (e) {
      if (my !== seq) return;
      status.textContent = '';
      showFilterError(e, v.filter);
      if (e instanceof ApiError && e.status === 400) filter.focus();
    } finally {
      if (my === seq) run.disabled = false;
    }
  }

  function drill(k, value) {
    const term = termFor(k, value);
    if (!term) {
      status.textContent = `The filter language cannot select a ${k}.`;
      return;
    }
    filter.value = narrow(filter.value, term);
    const v = values();
    pushUrl(v);
    execute(v, { focusList: true });
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = values();
    pushUrl(v);
    execute(v);
  });

  csv.addEventListener('click', () => {
    if (!top) return;
    const blob = new Blob([topCsv(top.key, top.rows)], { type: 'text/csv;charset=utf-8' });
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: `pharos-top-${top.key.replace(/[^a-z0-9]+/gi, '-')}.csv`, class: 'sr-only' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });

  await execute(values());
}

/** The length of a window given in the API's forms, roughly (for the series interval). */
function guessSpan(from, to) {
  const parse = (s, dflt) => {
    if (!s || s === 'now') return dflt;
    const rel = /^(?:now)?-(\d+)([smhdw])$/.exec(s);
    if (rel) return Date.now() - Number(rel[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[rel[2]];
    const words = /^(?:last|past)\s+(\d+)?\s*(second|minute|hour|day|week)s?$/i.exec(s.trim());
    if (words) return Date.now() - Number(words[1] || 1) * { second: 1e3, minute: 60e3, hour: 3600e3, day: 86400e3, week: 604800e3 }[words[2].toLowerCase()];
    if (/^\d{9,11}$/.test(s)) return Number(s) * 1000;
    const d = Date.parse(s);
    return Number.isNaN(d) ? dflt : d;
  };
  const t1 = parse(to, Date.now());
  const t0 = parse(from, t1 - 3600e3);
  return Math.max(1000, t1 - t0);
}
