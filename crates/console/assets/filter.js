// Keyword completion for the nfdump filter language of the flows explorer (the grammar of
// crates/flows/src/filter.rs): a combobox over the text input with a listbox of suggestions
// for the word at the caret, chosen by what came before it.

import { h } from './dom.js';

const TERMS = [
  ['src', 'source side: src host|ip|net|port|as'],
  ['dst', 'destination side: dst host|ip|net|port|as'],
  ['host', 'an address: host 192.0.2.1'],
  ['ip', 'an address (ip 192.0.2.1), or any flow'],
  ['net', 'a prefix: net 10.0.0.0/8'],
  ['port', 'a port: port 53, port > 1023'],
  ['proto', 'a protocol: proto udp, proto 47'],
  ['as', 'an AS number: as 64496'],
  ['if', 'an interface index: if 3'],
  ['in', 'in if N, in bytes/packets'],
  ['out', 'out if N'],
  ['flags', 'TCP flags: flags S and not flags A'],
  ['packets', 'packets > 100'],
  ['bytes', 'bytes > 1m'],
  ['vlan', 'a VLAN id: vlan 100'],
  ['tos', 'type of service: tos 0'],
  ['icmp-type', 'icmp-type 8'],
  ['icmp-code', 'icmp-code 0'],
  ['ipv4', 'IPv4 flows'],
  ['ipv6', 'IPv6 flows'],
  ['inet', 'IPv4 flows'],
  ['inet6', 'IPv6 flows'],
  ['any', 'every flow'],
  ['not', 'negation'],
];
const CONNECT = [['and', 'both'], ['or', 'either'], ['not', 'negation']];
const PROTOS = ['tcp', 'udp', 'icmp', 'icmp6', 'gre', 'esp', 'ah', 'sctp', 'ospf', 'igmp', 'ipip', 'pim', 'vrrp', 'l2tp', 'rsvp', 'egp', 'ipv6'];
const SIDED = [['host', 'an address'], ['ip', 'an address'], ['net', 'a prefix'], ['port', 'a port'], ['as', 'an AS number']];
const VALUE_AFTER = ['proto', 'host', 'ip', 'net', 'port', 'as', 'if', 'vlan', 'flags', 'tos', 'bytes', 'packets', 'icmp-type', 'icmp-code'];
const OPS = ['>', '<', '>=', '<=', '!=', '=', 'eq', 'ne', 'gt', 'lt', 'ge', 'le'];

/** The keywords completed (for the test and the help text). */
export const KEYWORDS = [...new Set([...TERMS.map((t) => t[0]), 'and', 'or', 'not', ...PROTOS])];

/** The word at `pos` in `text`: {start, end, word}. */
export function wordAt(text, pos) {
  let start = pos;
  while (start > 0 && /[A-Za-z0-9\-_.:/]/.test(text[start - 1])) start--;
  let end = pos;
  while (end < text.length && /[A-Za-z0-9\-_.:/]/.test(text[end])) end++;
  return { start, end, word: text.slice(start, pos) };
}

function tokensBefore(text) {
  return text.toLowerCase().split(/[\s()!&|]+/).filter(Boolean);
}

/** Suggestions for the word before `pos`: [{value, hint}]. Exported for tests. */
export function suggest(text, pos) {
  const { start, word } = wordAt(text, pos);
  const prev = tokensBefore(text.slice(0, start));
  const last = prev[prev.length - 1];
  const lw = word.toLowerCase();
  let pool;
  if (last === 'proto') pool = PROTOS.map((p) => [p, 'protocol']);
  else if (last === 'src' || last === 'dst') pool = SIDED;
  else if (last === 'in') pool = [['if', 'input interface'], ['bytes', 'bytes'], ['packets', 'packets']];
  else if (last === 'out') pool = [['if', 'output interface']];
  else if (['port', 'as', 'tos', 'bytes', 'packets', 'icmp-type', 'icmp-code'].includes(last)) pool = OPS.map((o) => [o, 'comparison']);
  else if (['host', 'ip', 'net', 'if', 'vlan', 'flags'].includes(last) && !(last === 'ip' && /^[a-z]/.test(lw))) pool = [];
  else if (!last || last === 'and' || last === 'or' || last === 'not' || last === '&&' || last === '||') pool = TERMS;
  else if (prev.length && (!isKeyword(last) || VALUE_AFTER.includes(prev[prev.length - 2]))) pool = CONNECT; // after a value
  else pool = TERMS;
  if (!lw || !/^[a-z]/.test(lw)) return [];
  const out = pool.filter(([v]) => v.startsWith(lw)).map(([value, hint]) => ({ value, hint }));
  if (out.length === 1 && out[0].value === lw) return [];
  return out.slice(0, 12);
}

function isKeyword(w) {
  return KEYWORDS.includes(w) || OPS.includes(w);
}

/**
 * Turns `input` into a combobox completing filter keywords in `listbox` (an empty `<ul>`).
 * ArrowDown/ArrowUp move, Enter or Tab accept, Escape closes. Enter on a closed list (or
 * when the word is already complete) submits the form as usual.
 */
export function attachCompletion(input, listbox) {
  input.setAttribute('role', 'combobox');
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-expanded', 'false');
  input.setAttribute('aria-controls', listbox.id);
  input.setAttribute('autocomplete', 'off');
  input.setAttribute('spellcheck', 'false');
  listbox.setAttribute('role', 'listbox');
  listbox.setAttribute('aria-label', 'Filter keywords');
  listbox.hidden = true;
  let items = [];
  let active = -1;

  function close() {
    listbox.hidden = true;
    listbox.replaceChildren();
    items = [];
    active = -1;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
  }

  function setActive(i) {
    active = i;
    [...listbox.children].forEach((li, k) => li.setAttribute('aria-selected', k === i ? 'true' : 'false'));
    if (i >= 0) {
      input.setAttribute('aria-activedescendant', `${listbox.id}-${i}`);
      listbox.children[i].scrollIntoView({ block: 'nearest' });
    } else input.removeAttribute('aria-activedescendant');
  }

  function open() {
    const pos = input.selectionStart ?? input.value.length;
    items = suggest(input.value, pos);
    if (!items.length) return close();
    listbox.replaceChildren(...items.map((it, i) => h('li', {
      id: `${listbox.id}-${i}`, role: 'option', 'aria-selected': 'false', dataset: { value: it.value },
      on: {
        mousedown: (ev) => {
          ev.preventDefault();
          accept(i);
        },
      },
    }, h('span', { class: 'kw', text: it.value }), ' ', h('span', { class: 'hint', text: it.hint }))));
    listbox.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    setActive(0);
  }

  function accept(i) {
    const it = items[i];
    if (!it) return;
    const pos = input.selectionStart ?? input.value.length;
    const { start, end } = wordAt(input.value, pos);
    const before = input.value.slice(0, start);
    let after = input.value.slice(end);
    const insert = it.value + (after.startsWith(' ') ? '' : ' ');
    input.value = before + insert + after;
    const caret = before.length + insert.length;
    input.setSelectionRange(caret, caret);
    close();
    input.dispatchEvent(new Event('change', { bubbles: true }));
  }

  input.addEventListener('input', open);
  // Close when the focus has left for good (not on the blur of a programmatic clear or of a
  // click on an option, after which the field has the focus again).
  input.addEventListener('blur', () => setTimeout(() => {
    if (document.activeElement !== input) close();
  }, 150));
  input.addEventListener('keydown', (ev) => {
    if (ev.key === ' ' && ev.ctrlKey) {
      ev.preventDefault();
      open();
      return;
    }
    if (listbox.hidden) {
      if (ev.key === 'ArrowDown' && !ev.altKey) {
        open();
        if (!listbox.hidden) ev.preventDefault();
      }
      return;
    }
    if (ev.key === 'ArrowDown') {
      ev.preventDefault();
      setActive((active + 1) % items.length);
    } else if (ev.key === 'ArrowUp') {
      ev.preventDefault();
      setActive((active - 1 + items.length) % items.length);
    } else if (ev.key === 'Enter' || ev.key === 'Tab') {
      const pos = input.selectionStart ?? input.value.length;
      const { word } = wordAt(input.value, pos);
      const it = items[active];
      if (it && !(ev.key === 'Enter' && it.value === word.toLowerCase())) {
        ev.preventDefault();
        accept(active);
      } else close();
    } else if (ev.key === 'Escape') {
      ev.preventDefault();
      close();
    }
  });
  return { close };
}
