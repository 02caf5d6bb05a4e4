import { createHash } from 'node:crypto';

/**
 * The page a set-password or recovery e-mail links to (`GET /reset-password?token=…`): a
 * form for the new password that sends it with the token to
 * `POST /api/v1/user/reset-password`. One self-contained document: its script and style
 * are inline and allowed by their hashes alone, and it loads nothing else.
 */
export const passwordPagePath = '/reset-password';

const script = `(function () {
  var form = document.getElementById('password-form');
  var out = document.getElementById('outcome');
  var token = new URLSearchParams(window.location.search).get('token') || '';
  // The API beside this page, wherever the gateway is mounted.
  var api = window.location.pathname.replace(/\\/reset-password\\/?$/i, '') + '/api/v1/user/reset-password';
  if (!token) {
    out.textContent = 'This link holds no token. Ask for a new e-mail.';
    form.hidden = true;
    return;
  }
  // The token leaves the address bar and the history.
  window.history.replaceState(null, '', window.location.pathname);
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var password = form.elements.password.value;
    if (password !== form.elements.repeat.value) {
      out.textContent = 'The two passwords differ.';
      return;
    }
    form.elements.send.disabled = true;
    out.textContent = '';
    fetch(api, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: token, password: password }) })
      .then(function (res) {
        return res.json().then(function (body) { return { ok: res.ok, body: body }; });
      })
      .then(function (answer) {
        if (answer.ok) {
          out.textContent = 'Your password is set. You can log in with it now.';
          form.hidden = true;
        } else {
          out.textContent = (answer.body && answer.body.detail) || 'The password could not be set.';
          form.elements.send.disabled = false;
        }
      })
      .catch(function () {
        out.textContent = 'The server could not be reached. Try again.';
        form.elements.send.disabled = false;
      });
  });
})();
`;

const style = `body { font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
label { display: block; margin: 1rem 0 0.25rem; }
input { width: 100%; padding: 0.5rem; box-sizing: border-box; }
button { margin-top: 1.25rem; padding: 0.5rem 1rem; }
#outcome { margin-top: 1.25rem; font-weight: 600; }
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** Its policy: nothing but its own script and style, and requests to this origin. */
export const passwordPageContentSecurityPolicy = `default-src 'none'; script-src ${sha256(script)}; style-src ${sha256(style)}; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`;

export const passwordPage = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="robots" content="noindex">
    <title>Set your password</title>
    <style>${style}</style>
  </head>
  <body>
    <h1>Set your password</h1>
    <form id="password-form" autocomplete="off">
      <p>At least 12 characters, with an upper-case letter, a lower-case letter, a digit and a symbol.</p>
      <label for="password">New password</label>
      <input id="password" name="password" type="password" autocomplete="new-password" required minlength="12">
      <label for="repeat">The same again</label>
      <input id="repeat" name="repeat" type="password" autocomplete="new-password" required minlength="12">
      <button id="send" name="send" type="submit">Set the password</button>
    </form>
    <p id="outcome" role="status"></p>
    <script>${script}</script>
  </body>
</html>
`;
