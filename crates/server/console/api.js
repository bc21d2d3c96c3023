// The API client: every call carries the agent's bearer token; every error
// answer (RFC 9457 problem+json) becomes an ApiProblem naming the field at
// fault. A 401 signs the agent out (the token is unknown or revoked).

const TOKEN_KEY = 'panorama.token';

/** An error answer of the API. */
export class ApiProblem extends Error {
  constructor(status, body) {
    super(body?.detail || body?.title || `HTTP ${status}`);
    this.status = status;
    this.type = body?.type ?? '';
    this.field = body?.field ?? null;
  }
}

let onUnauthorized = () => {};

/** Called with a message when the API answers 401. */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

// The token lives in the tab's sessionStorage (partitioned by the top-level
// site when the console is framed by an agent desktop). A browser that
// refuses storage to a framed page throws on any access: the token is then
// kept in memory, for as long as the page lives.
let memoryToken = null;

function stored(use, fallback) {
  try {
    return use(window.sessionStorage);
  } catch {
    return fallback();
  }
}

export const token = {
  get: () => memoryToken ?? stored((storage) => storage.getItem(TOKEN_KEY), () => null),
  set: (value) => stored((storage) => storage.setItem(TOKEN_KEY, value), () => { memoryToken = value; }),
  clear: () => {
    memoryToken = null;
    stored((storage) => storage.removeItem(TOKEN_KEY), () => {});
  },
};

/** The headers of an authenticated call. */
export function authHeaders(extra = {}) {
  return { Authorization: `Bearer ${token.get() ?? ''}`, ...extra };
}

/** The message for a problem an agent cannot fix in a form. */
export function explain(problem) {
  if (problem.status === 403) {
    return `Your token may not do this: ${problem.message}. Ask an administrator for an agent token.`;
  }
  if (problem.status === 503) return 'Panorama is busy or partly down; try again in a moment.';
  if (problem.status === 0) return 'Panorama cannot be reached; check your connection.';
  return problem.message;
}

async function call(path, { method = 'GET', body, signal } = {}) {
  const headers = authHeaders({ Accept: 'application/json' });
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method, headers, signal, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiProblem(0, { detail: 'network error' });
  }
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
  if (!response.ok) {
    const problem = new ApiProblem(response.status, parsed);
    if (response.status === 401) onUnauthorized(problem.message);
    throw problem;
  }
  return parsed;
}

const enc = encodeURIComponent;

export const api = {
  /** The profile of the customer owning an identifier; ApiProblem 404 when nobody does. */
  lookup: (kind, value, signal) => call(`/v1/customers/lookup?${enc(kind)}=${enc(value)}`, { signal }),
  profile: (id, signal) => call(`/v1/customers/${enc(id)}`, { signal }),
  timeline: (id, cursor, signal) =>
    call(`/v1/customers/${enc(id)}/timeline?limit=25${cursor ? `&cursor=${enc(cursor)}` : ''}`, { signal }),
  cases: (id, signal) => call(`/v1/customers/${enc(id)}/cases?limit=10`, { signal }),
  tasks: (id, signal) => call(`/v1/tasks?customer=${enc(id)}&status=open&limit=10`, { signal }),
  resolveCase: (caseId, outcome, note) =>
    call(`/v1/cases/${enc(caseId)}/resolve`, { method: 'POST', body: { outcome, note: note || undefined } }),
  addNote: (id, text, caseId) =>
    call(`/v1/customers/${enc(id)}/notes`, { method: 'POST', body: { text, case_id: caseId || undefined } }),
  addIdentifierNote: (kind, value, text) =>
    call('/v1/notes', { method: 'POST', body: { identifier: { kind, value }, text } }),
  createTask: (id, task) => call(`/v1/customers/${enc(id)}/tasks`, { method: 'POST', body: task }),
  recordConsent: (id, statement) =>
    call(`/v1/customers/${enc(id)}/consent`, { method: 'POST', body: statement }),
  confirmIdentifier: (id, kind, value) =>
    call(`/v1/customers/${enc(id)}/identifiers/confirm`, { method: 'POST', body: { kind, value } }),
  insights: (since, until) => {
    const query = new URLSearchParams();
    if (since) query.set('since', since);
    if (until) query.set('until', until);
    return call(`/v1/insights?${query}`);
  },
};
