// One event: summary, acknowledgement, the whole I2NSF notification and the raw line; for a
// DDoS event its rates over the attack window, top sources and ports, and a link to its flows.

import { get, post, flows, field, qs, ApiError } from './api.js';
import { h, replace, section, table, row, noteRow, svgEl, errorBox, showError } from './dom.js';
import { onChange } from './live.js';
import { lineChart } from './chart.js';
import { timeEl, fmtBps, fmtPps, fmtBytes, fmtCount, fmtInt, fmtDuration, toDate, pickInterval } from './time.js';
import { ddos, envelope, sevBadge, stateBadge, summary } from './msg.js';
import { rates, victimFilter, zeroFill } from './overview.js';

const CAN_ACK = new Set(['analyst', 'admin']);

function dl(pairs) {
  return h('dl', { class: 'props' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', { text: k }), h('dd', null, v)]));
}

function ackText(m) {
  const at = field(m, 'acked-at');
  if (!at && m.state !== 'acknowledged') return null;
  const by = field(m, 'acked-by');
  const comment = field(m, 'ack-comment');
  return h('span', null, 'acknowledged', by ? [' by ', h('strong', { text: by })] : null,
    at ? [' at ', timeEl(at)] : null, comment ? [': ', h('q', { text: comment })] : null);
}

export async function render(main, ctx) {
  const id = ctx.args[0];
  replace(main, h('h1', { text: `Event ${id}` }), h('p', { class: 'muted', text: 'Loading…' }));
  let m;
  try {
    m = await get(`/api/v1/messages/${encodeURIComponent(id)}`);
  } catch (e) {
    replace(main, h('h1', { text: `Event ${id}` }), h('p', { class: 'error', role: 'alert', text: e.message }),
      h('p', null, h('a', { href: '/ui/events', text: 'Back to the events' })));
    return;
  }
  if (!ctx.isCurrent()) return;
  ctx.setTitle(`Event ${id}`);
  const stops = [];
  const detail = h('div', { id: 'event-detail' });
  const env = envelope(m);

  // ---- properties
  const props = h('div');
  function drawProps() {
    replace(props, dl([
      ['Summary', summary(m) || '–'],
      ['Kind', m.kind],
      ['Severity', sevBadge(m.severity)],
      ['NSF', h('span', { class: 'nsf', text: field(m, 'nsf-name') || '' })],
      ['Event time', timeEl(field(m, 'event-time'))],
      ['Received', timeEl(field(m, 'receive-time'))],
      m.state ? ['State', [stateBadge(m), field(m, 'state-changed-at') ? [' since ', timeEl(field(m, 'state-changed-at'))] : null]] : null,
      env.source ? ['Source', String(env.source)] : null,
      env.count ? ['Count', String(env.count)] : null,
      ['Id', m.id],
    ]));
  }
  drawProps();

  // ---- acknowledgement
  const ackState = h('p', { id: 'ack-state', role: 'status', 'aria-live': 'polite' });
  const ackError = errorBox('ack-error');
  const ackBox = h('div', { class: 'ack' });
  const role = ctx.session && ctx.session.role;
  let ackForm = null;
  if (m.state !== undefined && m.state !== null) {
    if (CAN_ACK.has(role)) {
      const comment = h('textarea', { id: 'ack-comment', name: 'comment', rows: 2, maxlength: 1024, placeholder: 'What was done, or why (optional)' });
      const submit = h('button', { id: 'ack-submit', type: 'submit', text: 'Acknowledge' });
      ackForm = h('form', { id: 'ack-form', class: 'ack-form' },
        h('label', { for: 'ack-comment', text: 'Comment' }), comment, h('div', { class: 'actions' }, submit));
      ackForm.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        submit.disabled = true;
        showError(ackError, null);
        try {
          const text = comment.value.trim();
          m = await post(`/api/v1/events/${encodeURIComponent(m.id)}/ack`, text ? { comment: text } : {});
          drawAck();
          drawProps();
        } catch (e) {
          showError(ackError, e instanceof ApiError && e.status === 403 ? `Not allowed: ${e.message}` : e);
          submit.disabled = false;
        }
      });
    }
  }
  function drawAck() {
    if (m.state === undefined || m.state === null) {
      replace(ackState, 'This is a log or counters record: it has no state to acknowledge.');
      return;
    }
    const acked = ackText(m);
    replace(ackState, acked || (m.state === 'closed' ? 'Closed without an acknowledgement.' : 'Open: awaiting acknowledgement.'));
    if (ackForm) {
      ackForm.hidden = !!acked;
      ackForm.querySelector('#ack-submit').disabled = !!acked;
    }
  }
  drawAck();
  replace(ackBox, ackState, ackForm, ackError,
    m.state !== undefined && m.state !== null && !CAN_ACK.has(role)
      ? h('p', { class: 'muted', text: `Your role (${role || 'unknown'}) cannot acknowledge events; an analyst or admin can.` }) : null);


  // ---- the notification and the raw line
  const json = h('pre', { id: 'event-json', class: 'code', tabindex: 0, 'aria-label': 'The notification as JSON', text: JSON.stringify(m.notification, null, 2) });
  const raw = env.raw ? h('pre', { id: 'event-raw', class: 'code raw', tabindex: 0, 'aria-label': 'The raw line', text: String(env.raw) }) : null;

  stops.push(onChange((change, u) => {
    if (u && u.id === m.id) {
      m = u;
      drawProps();
      drawAck();
      json.textContent = JSON.stringify(m.notification, null, 2);
    }
  }));

  replace(main,
    h('p', { class: 'crumbs' }, h('a', { href: '/ui/events', text: 'Events' }), ' / ', `Event ${m.id}`),
    h('h1', null, sevBadge(m.severity), ' ', h('span', { text: `${m.kind}: ${summary(m) || m.id}` })),
    detail);
  const parts = [section('Details', 'sec-details', props), section('Acknowledgement', 'sec-ack', ackBox)];
  if (m.kind === 'ddos') {
    const a = ddosSection(m);
    parts.push(a.box);
    stops.push(a.stop);
  }
  if (raw) parts.push(section('Raw line', 'sec-raw', raw));
  parts.push(section('Notification (I2NSF YANG-JSON)', 'sec-json', json));
  detail.append(...parts);
  return () => stops.forEach((f) => f());
}

const REFRESH_ONGOING_MS = 10e3;

/** The attack part of a DDoS event: {box, stop}. Refreshed while the attack is ongoing. */
function ddosSection(m) {
  const d = ddos(m);
  const start = toDate(d.start) || toDate(field(m, 'event-time')) || new Date();
  const end = toDate(d.end);
  const endMs = end ? end.getTime() : Date.now();
  // Some context around the attack: a quarter of its length, 1 to 5 minutes.
  const pad = Math.min(5 * 60e3, Math.max(60e3, (endMs - start.getTime()) / 4));
  const from = new Date(start.getTime() - pad);
  const fromS = from.toISOString();
  // An ongoing attack's window stays open: its newest flows count as they arrive.
  const toS = end ? new Date(endMs + pad).toISOString() : undefined;
  const filter = victimFilter(d.victims);
  const svg = svgEl('ddos-chart', 'Packets and bits per second to the victim over the attack window');
  const chartErr = h('p', { class: 'error', role: 'alert', hidden: true });
  const srcT = table('ddos-top-sources', 'Top sources', ['Source', 'Bytes', 'Packets', 'Flows'], new Set([1, 2, 3]));
  const portT = table('ddos-top-ports', 'Top destination ports', ['Port', 'Bytes', 'Packets', 'Flows'], new Set([1, 2, 3]));
  const sportT = table('ddos-top-src-ports', 'Top source ports', ['Port', 'Bytes', 'Packets', 'Flows'], new Set([1, 2, 3]));
  const link = h('a', { id: 'flows-link', href: `/ui/flows${qs({ filter, from: fromS, to: toS, key: 'srcip' })}`, text: 'Show the flows behind this attack' });
  const durEl = h('span', { text: fmtDuration(endMs - start.getTime()) });

  const box = section('Attack', 'sec-attack',
    dl([
      ['Type', d.type],
      ['Victims', d.victims.join(', ') || '–'],
      ['Started', timeEl(d.start)],
      ['Ended', d.end ? timeEl(d.end) : h('strong', { class: 'warn-text', text: 'ongoing' })],
      ['Duration', durEl],
      ['Packets/s', d.pps === null ? '–' : fmtPps(d.pps)],
      ['Bits/s', d.bps === null ? '–' : fmtBps(d.bps)],
      d.sources.length ? ['Sources (sample)', d.sources.join(', ')] : null,
      d.dstPorts.length ? ['Ports', d.dstPorts.join(', ')] : null,
      d.rule ? ['Rule', String(d.rule)] : null,
    ]),
    h('p', null, link),
    h('h3', { text: 'Rates over the attack window' }), chartErr, svg,
    h('div', { class: 'grid three' },
      h('div', { class: 'scroll' }, srcT.table),
      h('div', { class: 'scroll' }, portT.table),
      h('div', { class: 'scroll' }, sportT.table)));

  if (!d.victims.length) {
    lineChart(svg, { series: [], empty: 'The event names no victim address.' });
    return { box, stop: () => {} };
  }
  lineChart(svg, { series: [], empty: 'Loading…' });
  for (const t of [srcT, portT, sportT]) t.tbody.replaceChildren(noteRow(4, 'Loading…'));
  let empty = true;

  async function chart() {
    const now = Date.now();
    const toMs = end ? endMs + pad : now;
    const iv = pickInterval(toMs - from.getTime(), 90);
    try {
      const r = await flows('series', { filter, from: fromS, to: toS, interval: iv.name });
      chartErr.hidden = true;
      const pts = zeroFill(r.points, r.interval_ms, from.getTime(), toMs);
      lineChart(svg, {
        label: `Packets and bits per second to ${d.victims.join(', ')}`,
        from: from.getTime(), to: toMs,
        series: [
          { name: 'Packets/s', cls: 's0', points: rates(pts, r.interval_ms, 'pps', now) },
          { name: 'Bits/s', cls: 's1', axis: 'right', points: rates(pts, r.interval_ms, 'bps', now) },
        ],
        yFormat: fmtPps, y2Format: fmtBps, empty: 'No flows to the victim were stored in this window.',
      });
      if ((r.points || []).some((p) => p.packets > 0)) empty = false;
    } catch (e) {
      chartErr.textContent = e.message;
      chartErr.hidden = false;
      if (!svg.querySelector('path')) lineChart(svg, { series: [], empty: 'No data' });
    }
  }
  async function top(t, key) {
    try {
      const r = await flows('top', { filter, from: fromS, to: toS, key, n: 10, by: 'bytes' });
      const rows = (r.rows || []).map((x) => row([String(x.key), fmtBytes(x.bytes), fmtCount(x.packets), fmtInt(x.flows)], { dataset: { value: String(x.key) } }, new Set([1, 2, 3])));
      t.tbody.replaceChildren(...(rows.length ? rows : [noteRow(4, 'No flows (yet).')]));
    } catch (e) {
      t.tbody.replaceChildren(noteRow(4, e.message, 'error'));
    }
  }
  function load() {
    chart();
    top(srcT, 'srcip');
    top(portT, 'dstport');
    top(sportT, 'srcport');
  }
  load();
  // Ongoing, or no flows stored yet (the archive is a second or two behind): look again.
  let tries = 0;
  const timer = setInterval(() => {
    if (!end) durEl.textContent = fmtDuration(Date.now() - start.getTime());
    if (document.hidden) return;
    if (end && (!empty || ++tries > 6)) {
      clearInterval(timer);
      return;
    }
    load();
  }, REFRESH_ONGOING_MS);
  return { box, stop: () => clearInterval(timer) };
}
