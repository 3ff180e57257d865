// Small SVG charts without a library: time-series lines (axes, legend, hover and keyboard
// tooltip, optional right axis), sparklines, and bar charts with focusable, clickable bars.
// Colours come from CSS classes (s0..s7), so both themes apply.

import { s } from './dom.js';
import { fmtAxisTime, fmtLocal, fmtUtc } from './time.js';

/** The width to draw at: the element's own, so text keeps its CSS size. */
function widthOf(svg) {
  const w = svg.getBoundingClientRect().width || (svg.parentElement && svg.parentElement.clientWidth) || 800;
  return Math.max(320, Math.round(w));
}

// Charts redraw when their width changes by more than a few pixels.
const redraws = new WeakMap();
const resizer = typeof ResizeObserver === 'function' ? new ResizeObserver((entries) => {
  for (const e of entries) {
    const r = redraws.get(e.target);
    if (r && Math.abs(e.contentRect.width - r.width) > 8) r.draw();
  }
}) : null;

function remember(svg, draw, width) {
  redraws.set(svg, { draw, width });
  if (resizer) resizer.observe(svg);
}

function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
}

/** Ticks from 0 to at least `max`: {max, ticks}. */
function yTicks(max, count) {
  if (!(max > 0)) max = 1;
  const step = niceStep(max / (count || 4));
  const top = Math.ceil(max / step - 1e-9) * step;
  const ticks = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(v);
  return { max: top, ticks };
}

const TIME_STEPS = [1e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3,
  7200e3, 10800e3, 21600e3, 43200e3, 86400e3, 2 * 86400e3, 7 * 86400e3];

function xTicks(t0, t1, count) {
  const span = Math.max(1, t1 - t0);
  let step = TIME_STEPS[TIME_STEPS.length - 1];
  for (const st of TIME_STEPS) {
    if (span / st <= (count || 7)) {
      step = st;
      break;
    }
  }
  // Align to the local clock (minutes, hours) rather than to the Unix epoch.
  const off = new Date(t0).getTimezoneOffset() * 60e3;
  const ticks = [];
  for (let t = Math.ceil((t0 - off) / step) * step + off; t <= t1; t += step) ticks.push(t);
  return ticks;
}

function clear(svg, w, hgt) {
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('preserveAspectRatio', 'xMidYMid meet');
  svg.classList.add('chart');
}

function emptyNote(svg, w, hgt, text) {
  svg.append(s('text', { x: w / 2, y: hgt / 2, class: 'empty', 'text-anchor': 'middle', text }));
}

/**
 * Draws a time-series chart into `svg` (its id and classes are kept).
 * opts: series [{name, points: [{t, v}], axis: 'left'|'right'}], yFormat, y2Format, label,
 * from, to (ms, optional), height (default 260), empty (text when there is no point).
 */
export function lineChart(svg, opts) {
  const W = widthOf(svg);
  const hgt = (opts.height || 260) + Math.max(0, Math.ceil(((opts.series || []).reduce((n, x) => n + 28 + (x.name || '').length * 7, 0)) / (W - 90)) - 1) * 18;
  remember(svg, () => lineChart(svg, opts), W);
  clear(svg, W, hgt);
  const series = (opts.series || []).filter((x) => x && x.points);
  const hasRight = series.some((x) => x.axis === 'right');
  // Legend entries, wrapped into rows that fit the width.
  const entries = [];
  {
    let lx = 70;
    let ly = 18;
    series.forEach((x, i) => {
      const name = x.name + (x.axis === 'right' ? ' (right axis)' : '');
      const w = 28 + name.length * 7;
      if (lx + w > W - 16 && lx > 70) {
        lx = 70;
        ly += 18;
      }
      entries.push({ x: lx, y: ly, name, cls: x.cls || `s${i % 8}` });
      lx += w;
    });
  }
  const legendH = entries.length ? entries[entries.length - 1].y : 0;
  const m = { l: 70, r: hasRight ? 70 : 16, t: legendH + 12, b: 26 };
  const pw = W - m.l - m.r;
  const ph = hgt - m.t - m.b;
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', opts.label || 'Time series chart');
  const all = series.flatMap((x) => x.points);
  if (!all.length) {
    emptyNote(svg, W, hgt, opts.empty || 'No data in this time range');
    svg.removeAttribute('tabindex');
    return;
  }
  let t0 = opts.from ?? Math.min(...all.map((p) => p.t));
  let t1 = opts.to ?? Math.max(...all.map((p) => p.t));
  if (t1 <= t0) t1 = t0 + 60e3;
  const maxOf = (axis) => Math.max(0, ...series.filter((x) => (x.axis || 'left') === axis).flatMap((x) => x.points.map((p) => p.v)));
  const yl = yTicks(maxOf('left'), 4);
  const yr = hasRight ? yTicks(maxOf('right'), 4) : null;
  const fmtL = opts.yFormat || String;
  const fmtR = opts.y2Format || fmtL;
  const X = (t) => m.l + ((t - t0) / (t1 - t0)) * pw;
  const YL = (v) => m.t + ph - (v / yl.max) * ph;
  const YR = yr ? (v) => m.t + ph - (v / yr.max) * ph : YL;

  const grid = s('g', { class: 'grid', 'aria-hidden': 'true' });
  for (const v of yl.ticks) {
    const y = YL(v);
    grid.append(s('line', { x1: m.l, x2: m.l + pw, y1: y, y2: y }));
    grid.append(s('text', { x: m.l - 6, y: y + 4, 'text-anchor': 'end', class: 'axis', text: fmtL(v) }));
  }
  if (yr) {
    for (const v of yr.ticks) {
      grid.append(s('text', { x: m.l + pw + 6, y: YR(v) + 4, 'text-anchor': 'start', class: 'axis', text: fmtR(v) }));
    }
  }
  for (const t of xTicks(t0, t1, 7)) {
    const x = X(t);
    grid.append(s('line', { x1: x, x2: x, y1: m.t + ph, y2: m.t + ph + 4, class: 'tick' }));
    grid.append(s('text', { x, y: hgt - 8, 'text-anchor': 'middle', class: 'axis', text: fmtAxisTime(t, t1 - t0) }));
  }
  grid.append(s('line', { x1: m.l, x2: m.l + pw, y1: m.t + ph, y2: m.t + ph, class: 'base' }));
  svg.append(grid);

  // Legend.
  const legend = s('g', { class: 'legend', 'aria-hidden': 'true' });
  for (const e of entries) {
    legend.append(s('rect', { x: e.x, y: e.y - 10, width: 12, height: 12, rx: 2, class: `swatch ${e.cls}` }));
    legend.append(s('text', { x: e.x + 16, y: e.y, class: 'legend-text', text: e.name }));
  }
  svg.append(legend);

  series.forEach((x, i) => {
    const cls = x.cls || `s${i % 8}`;
    const Y = x.axis === 'right' ? YR : YL;
    const pts = [...x.points].sort((a, b) => a.t - b.t);
    const d = pts.map((p, j) => `${j ? 'L' : 'M'}${X(p.t).toFixed(1)},${Y(p.v).toFixed(1)}`).join('');
    svg.append(s('path', { d, class: `line ${cls}`, 'aria-hidden': 'true' }));
    if (pts.length === 1) svg.append(s('circle', { cx: X(pts[0].t), cy: Y(pts[0].v), r: 3, class: `dot ${cls}` }));
  });

  // Hover and keyboard read-out.
  const times = [...new Set(all.map((p) => p.t))].sort((a, b) => a - b);
  const lookup = series.map((x) => new Map(x.points.map((p) => [p.t, p.v])));
  const cursor = s('g', { class: 'cursor', 'aria-hidden': 'true', visibility: 'hidden' });
  const vline = s('line', { y1: m.t, y2: m.t + ph, class: 'cursor-line' });
  const dots = series.map((x, i) => s('circle', { r: 4, class: `dot ${x.cls || `s${i % 8}`}` }));
  const box = s('rect', { rx: 4, class: 'tooltip-box' });
  const lines = [s('text', { class: 'tooltip-title' })].concat(series.map(() => s('text', { class: 'tooltip-text' })));
  cursor.append(vline, ...dots, box, ...lines);
  svg.append(cursor);
  // The read-out for screen readers lives next to the chart (CSS cannot hide SVG text
  // accessibly), created when first needed.
  function announce(text) {
    let live = svg.nextElementSibling;
    if (!live || !live.classList.contains('chart-readout')) {
      if (!svg.parentNode) return;
      live = document.createElement('p');
      live.className = 'sr-only chart-readout';
      live.setAttribute('aria-live', 'polite');
      svg.after(live);
    }
    live.textContent = text;
  }

  let idx = -1;
  function show(i) {
    idx = Math.max(0, Math.min(times.length - 1, i));
    const t = times[idx];
    const x = X(t);
    vline.setAttribute('x1', x);
    vline.setAttribute('x2', x);
    const rows = [`${fmtLocal(t)}`];
    series.forEach((sr, k) => {
      const v = lookup[k].get(t);
      const Y = sr.axis === 'right' ? YR : YL;
      const f = sr.axis === 'right' ? fmtR : fmtL;
      if (v === undefined) {
        dots[k].setAttribute('visibility', 'hidden');
        rows.push(`${sr.name}: –`);
      } else {
        dots[k].setAttribute('visibility', 'visible');
        dots[k].setAttribute('cx', x);
        dots[k].setAttribute('cy', Y(v));
        rows.push(`${sr.name}: ${f(v)}`);
      }
    });
    const bw = Math.max(...rows.map((r) => r.length)) * 7 + 16;
    const bh = rows.length * 16 + 10;
    const bx = x + 12 + bw > W ? x - 12 - bw : x + 12;
    const by = m.t + 4;
    box.setAttribute('x', bx);
    box.setAttribute('y', by);
    box.setAttribute('width', bw);
    box.setAttribute('height', bh);
    lines.forEach((el, k) => {
      el.setAttribute('x', bx + 8);
      el.setAttribute('y', by + 18 + k * 16);
      el.textContent = rows[k];
    });
    cursor.setAttribute('visibility', 'visible');
    announce(rows.join(', '));
    cursor.dataset.t = String(t);
  }
  function hide() {
    cursor.setAttribute('visibility', 'hidden');
  }
  function nearest(t) {
    let best = 0;
    for (let i = 1; i < times.length; i++) if (Math.abs(times[i] - t) < Math.abs(times[best] - t)) best = i;
    return best;
  }
  const area = s('rect', { x: m.l, y: m.t, width: pw, height: ph, class: 'hover-area' });
  area.addEventListener('pointermove', (ev) => {
    const r = svg.getBoundingClientRect();
    if (!r.width) return;
    const vx = ((ev.clientX - r.left) / r.width) * W;
    show(nearest(t0 + ((vx - m.l) / pw) * (t1 - t0)));
  });
  area.addEventListener('pointerleave', hide);
  svg.insertBefore(area, cursor);
  svg.setAttribute('tabindex', '0');
  svg.setAttribute('aria-label', `${opts.label || 'Time series chart'}. ${fmtUtc(t0)} to ${fmtUtc(t1)}. Use the left and right arrow keys to read values.`);
  svg.onkeydown = (ev) => {
    if (ev.key === 'ArrowLeft') show(idx < 0 ? times.length - 1 : idx - 1);
    else if (ev.key === 'ArrowRight') show(idx < 0 ? 0 : idx + 1);
    else if (ev.key === 'Home') show(0);
    else if (ev.key === 'End') show(times.length - 1);
    else if (ev.key === 'Escape') hide();
    else return;
    ev.preventDefault();
  };
  svg.onfocus = () => show(idx < 0 ? times.length - 1 : idx);
  svg.onblur = hide;
}

/** A sparkline `<svg>` of `values` (numbers, oldest first). */
export function sparkline(values, label, cls) {
  const w = 120;
  const hgt = 28;
  const svg = s('svg', { viewBox: `0 0 ${w} ${hgt}`, width: w, height: hgt, class: 'sparkline', role: 'img', 'aria-label': label || 'trend' });
  const vals = (values || []).map((v) => Number(v) || 0);
  if (vals.length < 2) {
    svg.append(s('line', { x1: 0, x2: w, y1: hgt - 2, y2: hgt - 2, class: `spark-empty` }));
    return svg;
  }
  const max = Math.max(...vals) || 1;
  const X = (i) => (i / (vals.length - 1)) * (w - 2) + 1;
  const Y = (v) => hgt - 2 - (v / max) * (hgt - 4);
  const d = vals.map((v, i) => `${i ? 'L' : 'M'}${X(i).toFixed(1)},${Y(v).toFixed(1)}`).join('');
  svg.append(s('path', { d: `${d}L${X(vals.length - 1).toFixed(1)},${hgt - 1}L1,${hgt - 1}Z`, class: `spark-area ${cls || 's0'}` }));
  svg.append(s('path', { d, class: `spark-line ${cls || 's0'}` }));
  return svg;
}

/**
 * Draws a bar chart into `svg`. opts: bars [{label, value, key}] (largest first), format,
 * horizontal (default true), onSelect(bar) on click or Enter/Space, label, empty.
 * Each bar is a focusable `rect.bar[data-value=<key or label>]`.
 */
export function barChart(svg, opts) {
  const bars = opts.bars || [];
  const fmt = opts.format || String;
  const horizontal = opts.horizontal !== false;
  const rowH = 26;
  const hgt = horizontal ? Math.max(80, bars.length * rowH + 16) : (opts.height || 260);
  const W = widthOf(svg);
  remember(svg, () => {
    const focused = document.activeElement && svg.contains(document.activeElement) ? document.activeElement.dataset.value : null;
    barChart(svg, opts);
    if (focused !== null) {
      const again = [...svg.querySelectorAll('rect.bar')].find((r) => r.dataset.value === focused);
      if (again) again.focus();
    }
  }, W);
  clear(svg, W, hgt);
  svg.setAttribute('role', 'group');
  svg.setAttribute('aria-label', opts.label || 'Bar chart');
  svg.removeAttribute('tabindex');
  if (!bars.length) {
    emptyNote(svg, W, hgt, opts.empty || 'No data');
    return;
  }
  const max = Math.max(...bars.map((b) => b.value)) || 1;
  const select = (b) => opts.onSelect && opts.onSelect(b);
  const mk = (b, attrs) => {
    const value = String(b.key ?? b.label);
    const r = s('rect', {
      ...attrs,
      class: 'bar' + (opts.onSelect ? ' selectable' : ''),
      tabindex: 0,
      role: opts.onSelect ? 'button' : 'img',
      'aria-label': `${b.label}: ${fmt(b.value)}${opts.onSelect ? '. Press Enter to drill down.' : ''}`,
      dataset: { value },
    });
    r.append(s('title', { text: `${b.label}: ${fmt(b.value)}` }));
    r.addEventListener('click', () => select(b));
    r.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        select(b);
      } else if (ev.key === 'ArrowDown' || ev.key === 'ArrowRight' || ev.key === 'ArrowUp' || ev.key === 'ArrowLeft') {
        const all = [...svg.querySelectorAll('rect.bar')];
        const i = all.indexOf(r) + (ev.key === 'ArrowDown' || ev.key === 'ArrowRight' ? 1 : -1);
        if (all[i]) {
          ev.preventDefault();
          all[i].focus();
        }
      }
    });
    return r;
  };
  if (horizontal) {
    const lw = Math.min(240, Math.round(W * 0.3));
    const vw = 110;
    const pw = W - lw - vw - 8;
    bars.forEach((b, i) => {
      const y = 8 + i * rowH;
      const maxChars = Math.floor(lw / 8);
      const label = b.label.length > maxChars ? b.label.slice(0, maxChars - 1) + '…' : b.label;
      svg.append(s('text', { x: lw - 8, y: y + 16, 'text-anchor': 'end', class: 'bar-label', text: label }));
      svg.append(s('rect', { x: lw, y: y + 2, width: pw, height: rowH - 6, class: 'bar-track', 'aria-hidden': 'true' }));
      svg.append(mk(b, { x: lw, y: y + 2, width: Math.max(2, (b.value / max) * pw), height: rowH - 6, rx: 2 }));
      svg.append(s('text', { x: lw + pw + 8, y: y + 16, class: 'bar-value', text: fmt(b.value) }));
    });
  } else {
    const m = { l: 70, r: 16, t: 16, b: 44 };
    const pw = W - m.l - m.r;
    const ph = hgt - m.t - m.b;
    const yt = yTicks(max, 4);
    for (const v of yt.ticks) {
      const y = m.t + ph - (v / yt.max) * ph;
      svg.append(s('line', { x1: m.l, x2: m.l + pw, y1: y, y2: y, class: 'grid-line' }));
      svg.append(s('text', { x: m.l - 6, y: y + 4, 'text-anchor': 'end', class: 'axis', text: fmt(v) }));
    }
    const bw = pw / bars.length;
    bars.forEach((b, i) => {
      const bh = (b.value / yt.max) * ph;
      const x = m.l + i * bw + bw * 0.15;
      svg.append(mk(b, { x, y: m.t + ph - bh, width: bw * 0.7, height: Math.max(1, bh), rx: 2 }));
      const label = b.label.length > 14 ? b.label.slice(0, 13) + '…' : b.label;
      svg.append(s('text', { x: x + bw * 0.35, y: hgt - m.b + 16, 'text-anchor': 'middle', class: 'bar-label', text: label }));
    });
  }
}
