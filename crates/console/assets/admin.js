// Admin: API tokens (create, revoke), subscriptions with their delivery state (create from a
// JSON spec, delete), the NSF inventory, and the effective configuration (secrets redacted).
// Viewers and analysts see the inventory; the rest needs the admin role.

import { get, post, del, field, ApiError } from './api.js';
import { h, replace, section, table, row, noteRow, errorBox, showError, field as formField } from './dom.js';
import { timeEl, fmtInt } from './time.js';

export async function render(main, ctx) {
  const role = ctx.session && ctx.session.role;
  const isAdmin = role === 'admin';
  const parts = [h('h1', { text: 'Admin' })];
  if (!isAdmin) {
    parts.push(h('p', { class: 'notice', text: `Tokens, subscriptions and the configuration need the admin role; you are ${role || 'unknown'}.` }));
  }
  const nsfs = nsfSection();
  if (isAdmin) parts.push(tokenSection(), subscriptionSection(), nsfs, configSection());
  else parts.push(nsfs);
  replace(main, ...parts);
}

// ---------------------------------------------------------------- tokens

function tokenSection() {
  const t = table('tokens', 'API tokens (never their secrets)', ['Name', 'Role', 'Source', 'Created', 'Expires', 'Last used', 'Status', 'Actions']);
  const err = errorBox('tokens-error');
  const name = h('input', { id: 'token-name', name: 'name', type: 'text', required: true, pattern: '[A-Za-z0-9._\\-]{1,64}', maxlength: 64, autocomplete: 'off', spellcheck: 'false' });
  const roleSel = h('select', { id: 'token-role', name: 'role' }, ['viewer', 'analyst', 'admin', 'nsf'].map((r) => h('option', { value: r, text: r })));
  const expires = h('input', { id: 'token-expires', name: 'expires_in', type: 'text', placeholder: 'never (or 30d, 12h)' });
  const nsf = h('input', { id: 'token-nsf', name: 'nsf', type: 'text', placeholder: 'role nsf only' });
  const create = h('button', { id: 'token-create', type: 'submit', text: 'Create token' });
  const formErr = errorBox('token-form-error');
  const secret = h('div', { id: 'token-secret', class: 'secret', role: 'status', 'aria-live': 'polite', hidden: true });
  const form = h('form', { id: 'token-form', class: 'inline-form', 'aria-label': 'Create an API token' },
    h('div', { class: 'fields' },
      formField('Name', name, '1 to 64 letters, digits, ".", "_" or "-"'),
      formField('Role', roleSel), formField('Expires in', expires), formField('NSF name', nsf)),
    h('div', { class: 'actions' }, create), formErr, secret);

  async function load() {
    try {
      const r = await get('/api/v1/tokens');
      const rows = (r.items || []).map((tk) => {
        const revoke = tk.source === 'database' && !tk.revoked
          ? h('button', { type: 'button', class: 'danger small', text: 'Revoke', 'aria-label': `Revoke token ${tk.name}`, on: { click: () => doRevoke(tk.name) } })
          : null;
        return row([
          h('span', { class: 'mono', text: tk.name }), tk.role + (tk.nsf ? ` (${tk.nsf})` : ''), tk.source,
          timeEl(tk.created, { empty: '–' }), timeEl(tk.expires, { empty: 'never' }), timeEl(tk.last_used, { empty: 'never' }),
          tk.revoked ? h('span', { class: 'badge warn', text: 'revoked' }) : h('span', { class: 'badge ok', text: 'active' }),
          revoke,
        ], { dataset: { token: tk.name } });
      });
      t.tbody.replaceChildren(...(rows.length ? rows : [noteRow(8, 'No token.')]));
    } catch (e) {
      t.tbody.replaceChildren(noteRow(8, e.message, 'error'));
    }
  }

  async function doRevoke(n) {
    if (!confirm(`Revoke the token ${n}? Requests with it are refused from now on.`)) return;
    showError(err, null);
    try {
      await del(`/api/v1/tokens/${encodeURIComponent(n)}`);
      await load();
    } catch (e) {
      showError(err, e);
    }
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(formErr, null);
    secret.hidden = true;
    const body = { name: name.value.trim(), role: roleSel.value };
    if (expires.value.trim()) body.expires_in = expires.value.trim();
    if (nsf.value.trim()) body.nsf = nsf.value.trim();
    if (!body.name) {
      showError(formErr, 'Give the token a name.');
      name.focus();
      return;
    }
    create.disabled = true;
    try {
      const r = await post('/api/v1/tokens', body);
      const code = h('code', { id: 'token-secret-value', class: 'mono', text: r.token });
      const copy = h('button', {
        type: 'button', class: 'secondary small', text: 'Copy',
        on: {
          click: async () => {
            try {
              await navigator.clipboard.writeText(r.token);
              copy.textContent = 'Copied';
            } catch {
              const sel = getSelection();
              const range = document.createRange();
              range.selectNodeContents(code);
              sel.removeAllRanges();
              sel.addRange(range);
            }
          },
        },
      });
      replace(secret, h('p', null, 'Token ', h('strong', { text: r.name }), ` (${r.role}) created. Its secret is shown only this once; store it now:`),
        h('p', null, code, ' ', copy));
      secret.hidden = false;
      name.value = '';
      expires.value = '';
      nsf.value = '';
      await load();
    } catch (e) {
      showError(formErr, e);
    } finally {
      create.disabled = false;
    }
  });

  load();
  return section('API tokens', 'sec-tokens', err, h('div', { class: 'scroll' }, t.table), h('h3', { text: 'Create a token' }), form);
}

// ---------------------------------------------------------------- subscriptions

function describeFilter(f) {
  if (!f) return 'everything';
  const parts = [];
  if (f.kinds && f.kinds.length) parts.push(`kinds ${f.kinds.join(', ')}`);
  if (f.min_severity) parts.push(`severity ≥ ${f.min_severity}`);
  if (f.nsf && f.nsf.length) parts.push(`NSF ${f.nsf.join(', ')}`);
  if (f.prefixes && f.prefixes.length) parts.push(`in ${f.prefixes.join(', ')}`);
  if (f.attack_types && f.attack_types.length) parts.push(`attacks ${f.attack_types.join(', ')}`);
  if (f.changes && f.changes.length) parts.push(`changes ${f.changes.join(', ')}`);
  return parts.join('; ') || 'everything';
}

function describeEmission(e) {
  if (!e || e === 'on-change') return 'on change';
  if (e.periodic) return `every ${e.periodic.interval}`;
  return typeof e === 'string' ? e : JSON.stringify(e);
}

const SUB_EXAMPLE = JSON.stringify({
  name: 'soc-webhook',
  filter: { kinds: ['ddos'], min_severity: 'high' },
  sink: { type: 'webhook', url: 'https://soc.example/hook' },
}, null, 2);

function subscriptionSection() {
  const t = table('subscriptions', 'Subscriptions and their delivery state',
    ['Name', 'Origin', 'Sink', 'Filter', 'Emission', 'Delivered', 'Pending', 'Failed', 'Dropped', 'Last delivery', 'Last error', 'Actions'], new Set([5, 6, 7, 8]));
  const err = errorBox('subscriptions-error');
  const spec = h('textarea', { id: 'sub-spec', name: 'spec', rows: 7, class: 'mono', spellcheck: 'false', placeholder: SUB_EXAMPLE });
  const create = h('button', { id: 'sub-create', type: 'submit', text: 'Create subscription' });
  const formErr = errorBox('sub-form-error');
  const form = h('form', { id: 'sub-form', 'aria-label': 'Create a subscription' },
    formField('Subscription spec (JSON)', spec, 'The body of POST /api/v1/subscriptions; see the placeholder for an example.'),
    h('div', { class: 'actions' }, create), formErr);

  async function load() {
    try {
      const r = await get('/api/v1/subscriptions');
      const rows = (r.items || []).map((sub) => {
        const st = sub.state || {};
        const sp = sub.spec || {};
        const rm = sub.origin === 'api'
          ? h('button', { type: 'button', class: 'danger small', text: 'Delete', 'aria-label': `Delete subscription ${sp.name}`, on: { click: () => doDelete(sp.name) } })
          : h('span', { class: 'muted small', text: 'pharos.toml' });
        return row([
          h('span', { class: 'mono', text: sp.name }), sub.origin, sub.sink, describeFilter(sp.filter), describeEmission(sp.emission),
          fmtInt(st.delivered), fmtInt(st.pending), fmtInt(st.failed), fmtInt(st.dropped),
          timeEl(st.last_delivery, { empty: 'never' }),
          st.last_error ? h('span', { class: 'warn-text', text: st.last_error }) : '–',
          rm,
        ], { dataset: { subscription: sp.name || '' }, class: st.last_error ? 'failing' : '' }, new Set([5, 6, 7, 8]));
      });
      t.tbody.replaceChildren(...(rows.length ? rows : [noteRow(12, 'No subscription.')]));
    } catch (e) {
      t.tbody.replaceChildren(noteRow(12, e.message, 'error'));
    }
  }

  async function doDelete(n) {
    if (!confirm(`Delete the subscription ${n}?`)) return;
    showError(err, null);
    try {
      await del(`/api/v1/subscriptions/${encodeURIComponent(n)}`);
      await load();
    } catch (e) {
      showError(err, e);
    }
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(formErr, null);
    let body;
    try {
      body = JSON.parse(spec.value);
    } catch (e) {
      showError(formErr, `The spec is not JSON: ${e.message}`);
      spec.focus();
      return;
    }
    create.disabled = true;
    try {
      await post('/api/v1/subscriptions', body);
      spec.value = '';
      await load();
    } catch (e) {
      showError(formErr, e);
    } finally {
      create.disabled = false;
    }
  });

  load();
  const refresh = h('button', { type: 'button', class: 'secondary small', text: 'Refresh', on: { click: load } });
  return section('Subscriptions', 'sec-subs', h('div', { class: 'toolbar' }, refresh), err, h('div', { class: 'scroll' }, t.table),
    h('details', null, h('summary', { text: 'Create a subscription' }), form));
}

// ---------------------------------------------------------------- NSF inventory

function nsfSection() {
  const t = table('nsfs', 'NSF inventory', ['Name', 'Type', 'Vendor / model', 'Addresses', 'Parser', 'Format', 'First seen', 'Last seen', 'Received', 'Parsed', 'Unparsed', 'Configured'], new Set([8, 9, 10]));
  const ex = table('nsf-exporters', 'Flow exporters', ['Exporter', 'Domain', 'NSF', 'Datagrams', 'Last received', 'Last export time', 'Clock offset', 'Correction'], new Set([3, 6, 7]));
  (async () => {
    try {
      const r = await get('/api/v1/nsfs');
      const rows = (r.items || []).map((n) => row([
        h('span', { class: 'nsf', text: n.name }), field(n, 'type') || '–',
        [n.vendor, n.model].filter(Boolean).join(' / ') || '–',
        [...(n.addresses || []), ...(n.hostnames || [])].join(', ') || (field(n, 'last-address') ? `${field(n, 'last-address')} (last)` : '–'),
        n.parser || '–', field(n, 'detected-format') || '–',
        timeEl(field(n, 'first-seen'), { empty: 'never' }), timeEl(field(n, 'last-seen'), { empty: 'never' }),
        fmtInt(n.received), fmtInt(n.parsed), fmtInt(n.unparsed), n.configured ? 'yes' : 'auto',
      ], { dataset: { nsf: n.name } }, new Set([8, 9, 10])));
      t.tbody.replaceChildren(...(rows.length ? rows : [noteRow(12, 'No NSF yet.')]));
      const erows = (r.exporters || []).map((e) => row([
        e.exporter, String(e.domain), e.nsf || '–', fmtInt(e.datagrams),
        timeEl(field(e, 'last-received')), timeEl(field(e, 'last-export-time')),
        `${Number(field(e, 'clock-offset-seconds') || 0).toFixed(2)} s`, `${Number(field(e, 'clock-correction-seconds') || 0).toFixed(2)} s`,
      ], null, new Set([3, 6, 7])));
      ex.tbody.replaceChildren(...(erows.length ? erows : [noteRow(8, 'No flow exporter is sending.')]));
    } catch (e) {
      t.tbody.replaceChildren(noteRow(12, e.message, 'error'));
    }
  })();
  return section('NSF inventory', 'sec-nsfs', h('div', { class: 'scroll' }, t.table), h('div', { class: 'scroll' }, ex.table));
}

// ---------------------------------------------------------------- configuration

function configSection() {
  const pre = h('pre', { id: 'config', class: 'code', tabindex: 0, 'aria-label': 'Effective configuration as JSON', text: 'Loading…' });
  get('/api/v1/config').then(
    (c) => {
      pre.textContent = JSON.stringify(c, null, 2);
    },
    (e) => {
      pre.textContent = e instanceof ApiError ? `Cannot load the configuration: ${e.message}` : String(e);
      pre.classList.add('error');
    },
  );
  return section('Effective configuration (secrets redacted)', 'sec-config', pre);
}
