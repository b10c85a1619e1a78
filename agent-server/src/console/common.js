// What both console pages share: the operator's token (kept in this tab's sessionStorage,
// never in a URL) and fetch with it.

const KEY = 'agent-console-operator-token';

/** Headers carrying the operator's token, when one was given. */
export function authHeaders() {
  const token = sessionStorage.getItem(KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Shows the token form; resolves once the user submitted a token. */
export function askToken() {
  const form = document.getElementById('token-form');
  form.hidden = false;
  return new Promise((resolve) => {
    form.onsubmit = (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, document.getElementById('token').value.trim());
      form.hidden = true;
      resolve();
    };
  });
}

/** fetch() with the token; on 401 asks for it once and tries again. */
export async function guardedFetch(url, options = {}) {
  const send = () => fetch(url, { ...options, headers: { ...options.headers, ...authHeaders() } });
  let response = await send();
  if (response.status === 401) {
    await askToken();
    response = await send();
  }
  return response;
}

/** The error message of an OpenAI-style error answer, or its status. */
export async function errorOf(response) {
  try {
    const body = await response.json();
    return body.error?.message ?? `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

/** An element with text (never HTML: everything shown comes from the network). */
export function el(tag, text = '', className = '') {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}
