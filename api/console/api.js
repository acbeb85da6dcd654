// The console's one way to the server: the public HTTP API, signed in by the session cookie.
// Whatever the console does, an integration can do with an API token and the same calls.

/** The signed-in agent, their tenant and the CSRF token of the session (set by `signIn`). */
export const session = { agent: null, tenant: null, csrf: null };

/** A refused request, carrying the problem+json answer's stable code and field at fault. */
export class Problem extends Error {
  constructor(status, body) {
    super(body?.detail || body?.title || `the server answered ${status}`);
    this.status = status;
    this.code = body?.code ?? "unknown";
    this.field = body?.field ?? null;
    this.body = body;
  }
}

const listeners = new Set();

/** Calls `listener()` when the server says the session ended (expired, signed out elsewhere). */
export function onSignedOut(listener) {
  listeners.add(listener);
}

/**
 * Calls `/api/v1` + `path`. Unsafe methods carry the session's CSRF token. Answers the JSON
 * body (null for 204) or throws a `Problem`.
 */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { detail: text };
  }
  if (!response.ok) {
    const problem = new Problem(response.status, parsed);
    if (response.status === 401 && session.agent && !path.startsWith("/auth/")) {
      session.agent = null;
      for (const listener of listeners) listener(problem);
    }
    throw problem;
  }
  return parsed;
}

/** A query string of the non-empty entries of `params`. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** Keeps what a login, an invitation or the session check answered. */
export function signIn(answer) {
  session.agent = answer.agent;
  session.tenant = answer.tenant;
  session.csrf = answer.csrf_token;
  return answer;
}

/** Asks the server whether the cookie still holds a session. */
export async function resume() {
  try {
    return signIn(await api("GET", "/auth/session"));
  } catch (problem) {
    if (problem instanceof Problem && problem.status === 401) return null;
    throw problem;
  }
}

/** Ends the session on the server, then forgets it here. */
export async function signOut() {
  try {
    await api("POST", "/auth/logout");
  } finally {
    session.agent = null;
    session.tenant = null;
    session.csrf = null;
  }
}

/** True for admins: the pages and buttons only they may use. */
export const isAdmin = () => session.agent?.role === "admin";
/** True for the read-only role. */
export const isAuditor = () => session.agent?.role === "auditor";
