// Overview: ongoing attacks and newest alarms (live from the stream), traffic in and out of the
// monitored networks over the last hour and top talkers and targets (live from the flow stage:
// GET /api/v1/traffic, no archive scan), NSF health and drop counters.

import { get, flows, field, qs } from './api.js';
import { h, replace, section, table, row, noteRow, svgEl } from './dom.js';
import { onChange } from './live.js';
import { lineChart, sparkline } from './chart.js';
import { timeEl, fmtDuration, fmtBps, fmtPps, fmtFps, fmtBytes, fmtInt, fmtCount, toDate } from './time.js';
import { ddos, ongoing, sevRank, sevBadge, stateBadge, summary, KINDS } from './msg.js';

const REFRESH_MS = 30e3;
// The live traffic view is read from memory by the server: cheap to poll often.
const TRAFFIC_MS = 5e3;
const TRAFFIC_STEP_S = 10;
const TOP_N = 10;
// A DDoS event's time is its attack's start, so an attack begun hours ago is still ongoing.
const ATTACK_WINDOW = '-24h';
const ALARM_WINDOW = '-24h';
const MAX_ALARMS = 20;
const SILENT_MS = 5 * 60e3;

/** Rates per second of `points` (the last, partial interval scaled by its elapsed part). */
export function rates(points, intervalMs, metric, nowMs) {
  return (points || []).map((p) => {
    const span = Math.max(1000, Math.min(intervalMs, (nowMs || Date.now()) - p.t_ms));
    let v = Number(p[metric === 'bps' ? 'bytes' : metric === 'pps' ? 'packets' : 'flows']) || 0;
    if (metric === 'bps') v *= 8;
    return { t: p.t_ms, v: v / (span / 1000) };
  });
}

/**
 * `points` with zero intervals added so they cover [fromMs, toMs) (aligned to the intervals the
 * server used); unchanged when empty.
 */
export function zeroFill(points, intervalMs, fromMs, toMs) {
  if (!points || !points.length || !(intervalMs > 0)) return points || [];
  const have = new Map(points.map((p) => [p.t_ms, p]));
  const base = points[0].t_ms;
  const first = base - Math.max(0, Math.ceil((base - fromMs) / intervalMs)) * intervalMs;
  const out = [];
  for (let t = first; t < toMs && out.length < 5000; t += intervalMs) {
    out.push(have.get(t) || { t_ms: t, bytes: 0, packets: 0, flows: 0 });
  }
  for (const p of points) if (p.t_ms < first || p.t_ms >= toMs) out.push(p);
  return out.sort((a, b) => a.t_ms - b.t_ms);
}

/**
 * The chart series of a live traffic view (`GET /api/v1/traffic`) for metric `bps`, `pps` or
 * `fps`: in and out of the monitored networks, or the total when none is configured.
 */
export function liveSeries(view, metric) {
  const p = (view && view.points) || {};
  const key = metric === 'bps' ? 'bits_per_s' : metric === 'pps' ? 'packets_per_s' : 'flows_per_s';
  const parts = view && view.networks && view.networks.length ? [['In', 'in'], ['Out', 'out']] : [['Total', 'total']];
  return parts.map(([name, dir], i) => ({
    name, cls: `s${i}`,
    points: (p.t_ms || []).map((t, k) => ({ t, v: Number(((p[dir] || {})[key] || [])[k]) || 0 })),
  }));
}

/** `dst ip a or dst ip b` for victims. */
export function victimFilter(victims, side) {
  return victims.map((v) => `${side || 'dst'} ${String(v).includes('/') ? 'net' : 'ip'} ${v}`).join(' or ');
}

export async function render(main, ctx) {
  const stops = [];
  const live = h('p', { class: 'sr-only', 'aria-live': 'polite', id: 'overview-announce' });
  const updated = h('span', { class: 'muted', id: 'overview-updated' });

  // ---- ongoing attacks
  const att = table('attacks', 'Ongoing DDoS attacks (no end time, not closed)',
    ['Victim', 'Type', 'Packets/s', 'Bits/s', 'Duration', 'Last 30 min', 'State'], new Set([2, 3, 4]));
  att.table.classList.add('attacks');
  const attacks = new Map();
  const fromStream = new Set();
  const attackRows = new Map();
  const sparks = new Map();

  // ---- alarms
  const alarmList = h('ul', { id: 'alarms', class: 'alarms', 'aria-label': 'Newest alarms, newest first' });
  const alarmCounts = h('p', { class: 'counts', id: 'alarm-counts' });
  const alarms = new Map();

  // ---- traffic
  const metric = h('select', { id: 'traffic-metric' },
    h('option', { value: 'bps', text: 'Bits per second' }),
    h('option', { value: 'pps', text: 'Packets per second' }),
    h('option', { value: 'fps', text: 'Flows per second' }));
  const trafficSvg = svgEl('traffic-chart', 'Traffic of the last hour');
  const trafficNote = h('p', { class: 'muted small', id: 'traffic-note' });
  const trafficPartial = h('p', { class: 'warn-text small', id: 'traffic-partial', hidden: true });
  const trafficErr = h('p', { class: 'error', role: 'alert', hidden: true });
  let traffic = null;
  // The live view (null until read, false when the server has none: no flow collectors).
  let liveView = null;

  // ---- tops
  const talkers = table('top-talkers', 'Top talkers: sources by bytes, last 15 minutes', ['Source', 'Bytes', 'Packets', 'Flows', 'Share'], new Set([1, 2, 3, 4]));
  const targets = table('top-targets', 'Top targets: destinations by bytes, last 15 minutes', ['Destination', 'Bytes', 'Packets', 'Flows', 'Share'], new Set([1, 2, 3, 4]));

  // ---- health
  const nsfT = table('nsf-health', 'NSFs: last seen and message counts', ['NSF', 'Last seen', 'Silent', 'Received', 'Parsed', 'Unparsed'], new Set([3, 4, 5]));
  const expT = table('exporters', 'Flow exporters and their clock offsets', ['Exporter', 'NSF', 'Last datagram', 'Clock offset', 'Correction'], new Set([3, 4]));
  const dropT = table('drops', 'Drop counters', ['Counter', 'Labels', 'Value'], new Set([2]));
  const counters = h('dl', { id: 'counters', class: 'counters' });

  replace(main,
    h('div', { class: 'page-head' }, h('h1', { text: 'Overview' }), updated),
    live,
    h('div', { class: 'grid two wide-left' },
      section('Ongoing attacks', 'sec-attacks', h('div', { class: 'scroll' }, att.table)),
      section('Newest alarms', 'sec-alarms', alarmCounts, alarmList)),
    section('Traffic, last hour', 'sec-traffic',
      h('div', { class: 'toolbar' }, h('label', { for: 'traffic-metric', text: 'Show' }), metric),
      trafficErr, trafficPartial, trafficSvg, trafficNote),
    h('div', { class: 'grid two' },
      section('Top talkers', 'sec-talkers', h('div', { class: 'scroll' }, talkers.table)),
      section('Top targets', 'sec-targets', h('div', { class: 'scroll' }, targets.table))),
    section('NSF health', 'sec-health',
      h('div', { class: 'scroll' }, nsfT.table),
      h('div', { class: 'grid two' },
        h('div', { class: 'scroll' }, expT.table),
        h('div', { class: 'scroll' }, dropT.table, counters))));
  for (const t of [att, talkers, targets, nsfT, expT, dropT]) t.tbody.append(noteRow(9, 'Loading…'));

  let overview = null;
  let closed = false;

  // ---------------------------------------------------------------- attacks
  function attackCells(tr, m) {
    const d = ddos(m);
    const cells = tr.children;
    replace(cells[0], h('a', { href: `/ui/events/${encodeURIComponent(m.id)}`, text: d.victims.join(', ') || '(no victim)' }));
    cells[1].textContent = d.type;
    cells[2].textContent = d.pps === null ? '–' : fmtPps(d.pps);
    cells[3].textContent = d.bps === null ? '–' : fmtBps(d.bps);
    tr.dataset.start = String(toDate(d.start)?.getTime() || '');
    cells[4].textContent = tr.dataset.start ? fmtDuration(Date.now() - Number(tr.dataset.start)) : '–';
    cells[4].title = d.start ? `since ${d.start}` : '';
    replace(cells[6], stateBadge(m));
  }

  function renderAttacks() {
    const list = [...attacks.values()].sort((a, b) => (toDate(ddos(b).start)?.getTime() || 0) - (toDate(ddos(a).start)?.getTime() || 0));
    for (const [id, tr] of attackRows) {
      if (!attacks.has(id)) {
        tr.remove();
        attackRows.delete(id);
      }
    }
    const note = att.tbody.querySelector('tr.note');
    if (note) note.remove();
    list.forEach((m, i) => {
      let tr = attackRows.get(m.id);
      if (!tr) {
        tr = h('tr', { dataset: { eventId: m.id } }, [0, 1, 2, 3, 4, 5, 6].map((k) => h('td', k >= 2 && k <= 4 ? { class: 'num' } : null)));
        tr.children[5].append(sparks.get(m.id) || sparkline([], 'no flow data yet'));
        attackRows.set(m.id, tr);
        loadSpark(m);
      }
      attackCells(tr, m);
      if (att.tbody.children[i] !== tr) att.tbody.insertBefore(tr, att.tbody.children[i] || null);
    });
    if (!list.length) att.tbody.append(noteRow(7, 'No ongoing attack.'));
  }

  async function loadSpark(m) {
    const d = ddos(m);
    if (!d.victims.length) return;
    try {
      const r = await flows('series', { filter: victimFilter(d.victims), from: '-30m', interval: '1m', by: 'packets' });
      const vals = rates(r.points, r.interval_ms, 'pps').map((p) => p.v);
      const peak = Math.max(0, ...vals);
      const svg = sparkline(vals, `Packets per second to ${d.victims.join(', ')}, last 30 minutes, peak ${fmtPps(peak)}`, 's1');
      sparks.set(m.id, svg);
      const tr = attackRows.get(m.id);
      if (tr) replace(tr.children[5], svg);
    } catch (e) {
      const tr = attackRows.get(m.id);
      if (tr) tr.children[5].title = e.message;
    }
  }

  async function loadAttacks() {
    const r = await get('/api/v1/messages', { kind: 'ddos', from: ATTACK_WINDOW, limit: 500 });
    const listed = new Set((r.items || []).map((m) => m.id));
    // Keep attacks the stream announced that the window does not list (older starts).
    for (const id of [...attacks.keys()]) if (listed.has(id) || !fromStream.has(id)) attacks.delete(id);
    for (const m of r.items || []) if (ongoing(m)) attacks.set(m.id, m);
    renderAttacks();
  }

  // ---------------------------------------------------------------- alarms
  function alarmItem(m) {
    return h('li', { dataset: { eventId: m.id }, class: `alarm sev-row-${m.severity}` },
      sevBadge(m.severity), ' ',
      h('a', { href: `/ui/events/${encodeURIComponent(m.id)}`, text: summary(m) || m.kind }), ' ',
      h('span', { class: 'meta' }, h('span', { class: 'kind', text: m.kind }), ' · ',
        h('span', { class: 'nsf', text: field(m, 'nsf-name') || '' }), ' · ', timeEl(field(m, 'event-time'))),
      m.state && m.state !== 'open' ? [' ', stateBadge(m)] : null);
  }

  function renderAlarms() {
    const list = [...alarms.values()].sort((a, b) =>
      (toDate(field(b, 'event-time'))?.getTime() || 0) - (toDate(field(a, 'event-time'))?.getTime() || 0)).slice(0, MAX_ALARMS);
    const keep = new Set(list.map((m) => m.id));
    for (const id of [...alarms.keys()]) if (!keep.has(id)) alarms.delete(id);
    const nodes = list.map(alarmItem);
    if (!nodes.length) nodes.push(h('li', { class: 'muted', text: 'No alarm of severity middle or above in the last 24 hours.' }));
    alarmList.replaceChildren(...nodes);
    const by = {};
    for (const m of list) by[m.severity] = (by[m.severity] || 0) + 1;
    replace(alarmCounts, ['critical', 'high', 'middle'].map((sv) => [sevBadge(sv), ` ${by[sv] || 0}  `]));
  }

  async function loadAlarms() {
    const r = await get('/api/v1/messages', {
      kind: KINDS.filter((k) => k !== 'ddos').join(','), severity: 'middle', from: ALARM_WINDOW, limit: MAX_ALARMS,
    });
    alarms.clear();
    for (const m of r.items || []) alarms.set(m.id, m);
    renderAlarms();
  }

  // ---------------------------------------------------------------- live
  stops.push(onChange((change, m) => {
    if (!m || !m.id) return;
    if (m.kind === 'ddos') {
      fromStream.add(m.id);
      const was = attacks.has(m.id);
      if (ongoing(m)) attacks.set(m.id, m);
      else attacks.delete(m.id);
      renderAttacks();
      if (!was && attacks.has(m.id)) live.textContent = `New attack: ${summary(m)}`;
      else if (was && !attacks.has(m.id)) live.textContent = `Attack ended: ${summary(m)}`;
    } else if (sevRank(m.severity) >= 2) {
      const was = alarms.has(m.id);
      if (!was && change !== 'created') return;
      alarms.set(m.id, m);
      renderAlarms();
      if (!was) live.textContent = `New ${m.severity} alarm: ${summary(m)}`;
    }
  }));

  // ---------------------------------------------------------------- traffic
  function drawTraffic() {
    const mt = metric.value;
    const fmt = mt === 'bps' ? fmtBps : mt === 'pps' ? fmtPps : fmtFps;
    if (liveView) {
      const series = liveSeries(liveView, mt);
      lineChart(trafficSvg, {
        series, yFormat: fmt, from: liveView.now_ms - 3600e3, to: liveView.now_ms,
        label: `${metric.selectedOptions[0].textContent}, ${series.map((x) => x.name).join(' and ')}, last hour, live`,
      });
      return;
    }
    if (!traffic) return;
    const series = traffic.parts.map((p, i) => ({
      name: p.name, cls: `s${i}`, points: rates(p.data.points, p.data.interval_ms, mt, traffic.now),
    }));
    lineChart(trafficSvg, {
      series, yFormat: fmt, from: traffic.now - 3600e3, to: traffic.now,
      label: `${metric.selectedOptions[0].textContent}, ${traffic.parts.map((p) => p.name).join(' and ')}, last hour`,
    });
  }
  metric.addEventListener('change', drawTraffic);

  async function loadTraffic() {
    const nets = (overview && overview.networks) || [];
    const now = Date.now();
    const base = { from: '-1h', to: 'now', interval: '1m' };
    let parts;
    try {
      if (nets.length) {
        const inF = nets.map((n) => `dst net ${n}`).join(' or ');
        const outF = nets.map((n) => `src net ${n}`).join(' or ');
        const [a, b] = await Promise.all([flows('series', { ...base, filter: inF }), flows('series', { ...base, filter: outF })]);
        parts = [{ name: 'In', data: a }, { name: 'Out', data: b }];
        trafficNote.textContent = `In: to ${nets.join(', ')}. Out: from them.`;
      } else {
        parts = [{ name: 'Total', data: await flows('series', base) }];
        trafficNote.textContent = 'No monitored networks are configured ([detect] networks): all flows.';
      }
      trafficErr.hidden = true;
    } catch (e) {
      trafficErr.textContent = `Traffic: ${e.message}`;
      trafficErr.hidden = false;
      return;
    }
    traffic = { parts, now };
    drawTraffic();
  }

  // ---------------------------------------------------------------- live traffic view
  function topRows(list, total, side, from) {
    return (list || []).map((x) => row([
      h('a', { href: `/ui/flows${qs({ filter: `${side} ip ${x.addr}`, from, key: side === 'src' ? 'dstip' : 'srcip' })}`, text: String(x.addr) }),
      h('span', { text: `${x.bytes_error ? '≈ ' : ''}${fmtBytes(x.bytes)}`, title: x.bytes_error ? `± ${fmtBytes(x.bytes_error)} (estimate)` : null }),
      fmtCount(x.packets), fmtInt(x.flows),
      total ? `${((x.bytes / total) * 100).toFixed(1)} %` : '–',
    ], { dataset: { addr: String(x.addr) } }, new Set([1, 2, 3, 4])));
  }

  function renderLive(v) {
    const nets = v.networks || [];
    const since = Number(v.since_ms) || 0;
    const notes = [nets.length ? `In: to ${nets.join(', ')}. Out: from them.`
      : 'No monitored networks are configured ([detect] networks): all flows.',
    `Live from the flow stage, by arrival time, ${v.step_s} s per point.`];
    if (!since) notes.push('No second counted yet.');
    else if (since > v.now_ms - 3600e3) notes.push(`Counting since ${new Date(since).toLocaleTimeString()} (start of pharos run); earlier traffic is in the flow archive (Flows page).`);
    trafficNote.textContent = notes.join(' ');
    const missed = Number(v.dropped_batches_last_hour) || 0;
    trafficPartial.hidden = !v.partial;
    trafficPartial.dataset.droppedBatches = String(Number(v.dropped_batches) || 0);
    trafficPartial.textContent = v.partial
      ? `Partial: the live view missed ${fmtInt(missed)} flow batches in the last hour (its queue was full under load); the chart and top lists are lower than the traffic.`
      : '';
    trafficErr.hidden = true;
    drawTraffic();
    const top = v.top || {};
    const mins = Math.max(1, Math.round(((top.to_ms || 0) - (top.from_ms || 0)) / 60e3));
    const from = `-${mins}m`;
    const span = mins === 1 ? 'last minute' : `last ${mins} minutes`;
    const total = (top.total && top.total.bytes) || 0;
    talkers.table.querySelector('caption').textContent = `Top talkers: sources by bytes, ${span} (live)`;
    targets.table.querySelector('caption').textContent = `Top targets: destinations by bytes, ${span} (live)`;
    for (const [t, list, side] of [[talkers, top.talkers, 'src'], [targets, top.targets, 'dst']]) {
      const rows = topRows(list, total, side, from);
      t.tbody.replaceChildren(...(rows.length ? rows : [noteRow(5, `No flows in the ${span}.`)]));
    }
  }

  /** Reads the live view; false when the server has none (then the archive is scanned). */
  async function loadLive() {
    if (liveView === false || closed) return false;
    try {
      liveView = await get('/api/v1/traffic', { step: TRAFFIC_STEP_S, top: TOP_N });
    } catch (e) {
      if (e.status === 404) {
        liveView = false;
        return false;
      }
      trafficErr.textContent = `Traffic: ${e.message}`;
      trafficErr.hidden = false;
      return true;
    }
    renderLive(liveView);
    return true;
  }

  // ---------------------------------------------------------------- tops (archive, without a live view)
  async function loadTop(t, key, side) {
    try {
      const r = await flows('top', { key, from: '-15m', n: 10, by: 'bytes' });
      const total = (r.total && r.total.bytes) || 0;
      const rows = (r.rows || []).map((x) => row([
        h('a', { href: `/ui/flows${qs({ filter: `${side} ip ${x.key}`, from: '-15m', key: side === 'src' ? 'dstip' : 'srcip' })}`, text: String(x.key) }),
        fmtBytes(x.bytes), fmtCount(x.packets), fmtInt(x.flows),
        total ? `${((x.bytes / total) * 100).toFixed(1)} %` : '–',
      ], null, new Set([1, 2, 3, 4])));
      t.tbody.replaceChildren(...(rows.length ? rows : [noteRow(5, 'No flows in the last 15 minutes.')]));
    } catch (e) {
      t.tbody.replaceChildren(noteRow(5, e.message, 'error'));
    }
  }

  // ---------------------------------------------------------------- health
  async function loadNsfs() {
    try {
      const r = await get('/api/v1/nsfs');
      const now = Date.now();
      const rows = (r.items || []).map((n) => {
        const seen = toDate(field(n, 'last-seen'));
        const silent = !seen || now - seen.getTime() > SILENT_MS;
        return row([
          h('span', { class: 'nsf', text: n.name }),
          timeEl(seen, { relative: true, empty: 'never' }),
          h('span', { class: silent ? 'badge warn' : 'badge ok', text: silent ? 'silent' : 'no' }),
          fmtInt(n.received), fmtInt(n.parsed), h('span', { class: n.unparsed ? 'warn-text' : '', text: fmtInt(n.unparsed) }),
        ], { dataset: { nsf: n.name, silent: String(silent) }, class: silent ? 'silent' : '' }, new Set([3, 4, 5]));
      });
      nsfT.tbody.replaceChildren(...(rows.length ? rows : [noteRow(6, 'No NSF has sent anything yet.')]));
      const ex = (r.exporters || []).map((e) => {
        const off = Number(field(e, 'clock-offset-seconds')) || 0;
        const cor = Number(field(e, 'clock-correction-seconds')) || 0;
        return row([
          `${e.exporter}${e.domain ? ` / ${e.domain}` : ''}`, e.nsf || '–',
          timeEl(field(e, 'last-received'), { relative: true }),
          h('span', { class: Math.abs(off) > 2 ? 'warn-text' : '', text: `${off.toFixed(1)} s` }),
          `${cor.toFixed(1)} s`,
        ], null, new Set([3, 4]));
      });
      expT.tbody.replaceChildren(...(ex.length ? ex : [noteRow(5, 'No flow exporter is sending.')]));
    } catch (e) {
      nsfT.tbody.replaceChildren(noteRow(6, e.message, 'error'));
      expT.tbody.replaceChildren();
    }
  }

  function renderDrops() {
    const drops = (overview && overview.drops) || [];
    const rows = drops.map((d) => row([
      d.name, Object.entries(d.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ') || '–',
      h('span', { class: d.value ? 'warn-text' : '', text: fmtInt(d.value) }),
    ], null, new Set([2])));
    dropT.tbody.replaceChildren(...(rows.length ? rows : [noteRow(3, 'Nothing dropped.')]));
    const c = (overview && overview.counters) || {};
    replace(counters, Object.entries(c).map(([k, v]) => [h('dt', { text: k.replace(/_/g, ' ') }), h('dd', { text: fmtInt(v) })]));
  }

  async function loadOverview() {
    try {
      overview = await get('/api/v1/overview');
      renderDrops();
    } catch (e) {
      dropT.tbody.replaceChildren(noteRow(3, `Overview: ${e.message}`, 'error'));
    }
  }

  // ---------------------------------------------------------------- refresh
  async function refreshEvents() {
    await Promise.all([
      loadAttacks().catch((e) => att.tbody.replaceChildren(noteRow(7, e.message, 'error'))),
      loadAlarms().catch((e) => alarmList.replaceChildren(h('li', { class: 'error', text: e.message }))),
    ]);
  }

  async function refreshCharts() {
    if (closed) return;
    const [, live] = await Promise.all([loadOverview(), loadLive()]);
    const archive = live ? [] : [loadTraffic(), loadTop(talkers, 'srcip', 'src'), loadTop(targets, 'dstip', 'dst')];
    await Promise.all([...archive, loadNsfs()]);
    for (const m of attacks.values()) loadSpark(m);
    if (!closed) replace(updated, 'Updated ', timeEl(new Date()));
  }

  refreshEvents();
  refreshCharts();
  const tick = setInterval(() => {
    for (const tr of attackRows.values()) {
      if (tr.dataset.start) tr.children[4].textContent = fmtDuration(Date.now() - Number(tr.dataset.start));
    }
  }, 1000);
  const refresh = setInterval(() => {
    if (document.hidden) return;
    refreshEvents();
    refreshCharts();
  }, REFRESH_MS);
  const liveTick = setInterval(() => {
    if (!document.hidden && liveView) loadLive();
  }, TRAFFIC_MS);

  return () => {
    closed = true;
    clearInterval(tick);
    clearInterval(refresh);
    clearInterval(liveTick);
    for (const f of stops) f();
  };
}
