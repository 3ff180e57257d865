// DOM helpers: every string goes in as text (textContent / attributes), never as markup.

/**
 * Creates an element. `attrs`: `class`, `text` (textContent), `dataset` (object), `on`
 * (object of listeners), properties such as `hidden`, `disabled`, `value`, `checked`, and any
 * other key as an attribute (null/undefined/false are skipped). Children: nodes or strings
 * (strings become text nodes), arrays are flattened, null/false skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const PROPS = new Set(['hidden', 'disabled', 'value', 'checked', 'selected', 'tabIndex', 'required', 'readOnly']);

export function setAttrs(el, attrs) {
  if (!attrs) return el;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) {
      if (PROPS.has(k)) el[k] = false;
      continue;
    }
    if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

const SVG = 'http://www.w3.org/2000/svg';

/** Creates an SVG element with attributes (same rules as `h`, minus properties). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'dataset') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else el.setAttribute(k, String(v));
    }
  }
  return append(el, children);
}

/** An empty `<svg>` with an id, ready for the chart functions. */
export function svgEl(id, label) {
  return s('svg', { id, role: 'img', 'aria-label': label, class: 'chart' });
}

/**
 * A semantic table: `head` is a list of column titles, `num` the indexes of numeric (right-
 * aligned) columns; returns {table, tbody}.
 */
export function table(id, caption, head, num) {
  const tbody = h('tbody');
  const t = h('table', { id, class: 'data' },
    caption ? h('caption', { text: caption }) : null,
    h('thead', null, h('tr', null, head.map((c, i) => h('th', { scope: 'col', class: num && num.has(i) ? 'num' : null, text: c })))),
    tbody);
  return { table: t, tbody };
}

/** A row whose cells hold `cells` (nodes or strings); `num` marks numeric columns by index. */
export function row(cells, attrs, num) {
  return h('tr', attrs, cells.map((c, i) => h('td', num && num.has(i) ? { class: 'num' } : null, c)));
}

/** A row spanning all columns with a note (empty results, errors). */
export function noteRow(cols, text, cls) {
  return h('tr', { class: cls || 'note' }, h('td', { colspan: cols, text }));
}

/** Section with heading (h2) and content. */
export function section(title, id, ...children) {
  const hid = id ? `${id}-h` : null;
  return h('section', { class: 'card', 'aria-labelledby': hid }, h('h2', { id: hid, text: title }), children);
}

/** A labelled form field wrapper. */
export function field(label, control, hint) {
  return h('div', { class: 'field' },
    h('label', { for: control.id, text: label }),
    control,
    hint ? h('small', { class: 'hint', id: `${control.id}-hint`, text: hint }) : null);
}

/** An error message element (hidden until set). */
export function errorBox(id) {
  return h('p', { id, class: 'error', role: 'alert', hidden: true });
}

export function showError(el, err) {
  if (!err) {
    el.textContent = '';
    el.hidden = true;
    return;
  }
  el.textContent = typeof err === 'string' ? err : (err.message || String(err));
  el.hidden = false;
}
