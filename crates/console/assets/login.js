// The login page: exchanges an API token for a session cookie, then goes to `next`.

const form = document.getElementById('login-form');
const input = document.getElementById('token');
const error = document.getElementById('login-error');
const submit = document.getElementById('login-submit');

/** Where to go after logging in: `next` when it is a console path, else the overview. */
function target() {
  const next = new URLSearchParams(location.search).get('next') || '';
  return next.startsWith('/ui/') && !next.startsWith('/ui/login') ? next : '/ui/';
}

function showError(text) {
  error.textContent = text;
  error.hidden = !text;
  input.setAttribute('aria-invalid', text ? 'true' : 'false');
}

if (new URLSearchParams(location.search).get('expired')) {
  showError('Your session has expired; log in again.');
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const token = input.value.trim();
  if (!token) {
    showError('Enter an API token.');
    input.focus();
    return;
  }
  showError('');
  submit.disabled = true;
  submit.textContent = 'Logging in…';
  try {
    const resp = await fetch('/api/v1/session', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ token }),
    });
    if (resp.ok) {
      location.assign(target());
      return;
    }
    let msg = `${resp.status} ${resp.statusText}`;
    try {
      const body = await resp.json();
      if (body && body.error) msg = body.error;
    } catch {
      // keep the status line
    }
    showError(msg);
    input.select();
    input.focus();
  } catch (e) {
    showError('The server cannot be reached: ' + (e && e.message ? e.message : e));
  } finally {
    submit.disabled = false;
    submit.textContent = 'Log in';
  }
});
