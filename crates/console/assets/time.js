// Times in the browser's zone (UTC in the title), durations, and rates with SI units.

import { h } from './dom.js';

const dateTimeFmt = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
});
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hour12: false });
const timeSecFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

/** A Date from an RFC 3339 string, Unix ms, or a Date; null when absent or invalid. */
export function toDate(v) {
  if (v === null || v === undefined || v === '') return null;
  const d = v instanceof Date ? v : new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** `2026-11-24 15:00:00` in the browser's zone. */
export function fmtLocal(v) {
  const d = toDate(v);
  return d ? dateTimeFmt.format(d) : '';
}

/** `2026-11-24 14:00:00.250 UTC`. */
export function fmtUtc(v) {
  const d = toDate(v);
  if (!d) return '';
  return d.toISOString().replace('T', ' ').replace(/\.000Z$/, 'Z').replace('Z', ' UTC');
}

/** A `<time>` element: local time as text, UTC in the title and `datetime`. */
export function timeEl(v, opts) {
  const d = toDate(v);
  if (!d) return h('span', { class: 'muted', text: (opts && opts.empty) || '–' });
  const text = opts && opts.relative ? `${fmtLocal(d)} (${ago(d)})` : fmtLocal(d);
  return h('time', { datetime: d.toISOString(), title: fmtUtc(d), text });
}

/** Axis label for a time: `HH:MM` (with seconds for short spans, a date for long ones). */
export function fmtAxisTime(ms, spanMs) {
  const d = new Date(ms);
  if (spanMs > 2 * 86400e3) return dayFmt.format(d);
  if (spanMs < 10 * 60e3) return timeSecFmt.format(d);
  return timeFmt.format(d);
}

/** `1h 02m`, `3m 05s`, `12s`, `2d 4h`. */
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  let s = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const p2 = (n) => String(n).padStart(2, '0');
  if (d) return `${d}d ${hh}h`;
  if (hh) return `${hh}h ${p2(m)}m`;
  if (m) return `${m}m ${p2(s)}s`;
  return `${s}s`;
}

/** `5m ago`. */
export function ago(v) {
  const d = toDate(v);
  if (!d) return '';
  const ms = Date.now() - d.getTime();
  return ms < 0 ? `in ${fmtDuration(-ms)}` : `${fmtDuration(ms)} ago`;
}

const PREFIXES = ['', 'k', 'M', 'G', 'T', 'P', 'E'];

/** A number with an SI prefix: `1.25 M`, `980`, `12.3 k` (powers of 1000). */
export function si(n, unit) {
  if (n === null || n === undefined || !Number.isFinite(Number(n))) return '';
  n = Number(n);
  let i = 0;
  let v = Math.abs(n);
  while (v >= 1000 && i < PREFIXES.length - 1) {
    v /= 1000;
    i++;
  }
  const digits = i === 0 ? (v < 10 && v % 1 ? 2 : 0) : v < 10 ? 2 : v < 100 ? 1 : 0;
  const s = (n < 0 ? '-' : '') + v.toFixed(digits);
  const u = PREFIXES[i] + (unit || '');
  return u ? `${s} ${u}` : s;
}

/** Bits per second from bits/s: `1.20 Gbps`. */
export const fmtBps = (bitsPerSec) => si(bitsPerSec, 'bps');
/** Packets per second: `250 kpps`. */
export const fmtPps = (pps) => si(pps, 'pps');
/** Flows per second. */
export const fmtFps = (fps) => si(fps, 'flows/s');
/** Bytes (powers of 1000): `1.5 MB`. */
export const fmtBytes = (b) => si(b, 'B');
/** A plain count: `12.3 k`. */
export const fmtCount = (n) => si(n, '');

/** Thousands separators for exact counts. */
const intFmt = new Intl.NumberFormat();
export const fmtInt = (n) => (n === null || n === undefined ? '' : intFmt.format(Number(n)));

/** Parses `10s`, `1m`, `2h`, `1d` to ms (null if not one). */
export function parseDuration(s) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(s || '');
  if (!m) return null;
  const mult = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2]];
  return Number(m[1]) * mult;
}

/** A series interval giving about `points` points over `spanMs`: `10s`, `1m`, `5m`... */
export function pickInterval(spanMs, points) {
  const want = spanMs / (points || 60);
  const steps = [[1e3, '1s'], [5e3, '5s'], [10e3, '10s'], [30e3, '30s'], [60e3, '1m'], [120e3, '2m'], [300e3, '5m'],
    [600e3, '10m'], [1800e3, '30m'], [3600e3, '1h'], [3 * 3600e3, '3h'], [6 * 3600e3, '6h'],
    [86400e3, '1d']];
  for (const [ms, name] of steps) if (ms >= want) return { ms, name };
  return { ms: 86400e3, name: '1d' };
}
