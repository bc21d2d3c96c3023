// The console inside an agent desktop (Salesforce Open CTI, Amazon Connect,
// Genesys Cloud, Twilio Flex, Zendesk): the desktop shows it in an iframe
// and sends screen pops by postMessage. Protocol version 1, documented in
// docs/console-embedding.md:
//
//   desktop → console  {type: 'panorama.screenpop', version: 1, request_id,
//                       identifier: {kind: 'phone', value: '+4420...'}}
//                      (or the identifier as a key: {..., phone: '+4420...'})
//   console → desktop  {type: 'panorama.ready', version: 1, signed_in}
//                      {type: 'panorama.customer', version: 1, request_id,
//                       status: 'found' | 'not_found', customer_id, identifier, url}
//                      {type: 'panorama.error', version: 1, request_id, error, detail}
//
// Only windows whose origin the server lets frame the console
// (PANORAMA_CONSOLE_FRAME_ANCESTORS, handed to the page in a meta tag) are
// heard; everyone else is ignored without an answer. Answers go to the
// sender's window and origin only, never to '*'.

/** The protocol version this console speaks. */
export const VERSION = 1;

/** Identifier kinds a screen pop may name (those of the lookup API). */
export const KINDS = ['phone', 'email', 'account', 'whatsapp', 'messenger', 'instagram', 'x', 'visitor'];

/** What the console sends: never answered, so two consoles cannot talk in circles. */
const ANSWERS = ['panorama.ready', 'panorama.customer', 'panorama.error'];

/** The longest identifier value or request id taken. */
const MAX_LENGTH = 512;

/** The sources the server lets frame the console: 'self' and origins, some `https://*.host`. */
export function frameAncestors() {
  const meta = document.querySelector('meta[name="panorama-frame-ancestors"]');
  return (meta?.getAttribute('content') ?? '')
    .split(/\s+/)
    .filter((source) => source && source !== "'none'");
}

/** Whether `origin` (as a MessageEvent gives it) is one of `sources`. */
export function originAllowed(origin, sources) {
  if (typeof origin !== 'string' || origin === 'null') return false;
  let url;
  try { url = new URL(origin); } catch { return false; }
  return sources.some((source) => {
    if (source === "'self'") return origin === location.origin;
    const wildcard = /^(https?):\/\/\*\.([^/:]+)(?::(\d+))?$/.exec(source);
    if (!wildcard) return origin === source;
    const [, scheme, domain, port] = wildcard;
    return url.protocol === `${scheme}:`
      && url.hostname.endsWith(`.${domain}`)
      && url.port === (port ?? '');
  });
}

/** The origin of a URL, or null. */
function originOf(text) {
  try { return text ? new URL(text).origin : null; } catch { return null; }
}

/**
 * Where `panorama.ready` may go: the parent's origin when the browser tells
 * it and it is allowed, else every plain origin of the list (the browser
 * delivers to the one the parent has). Empty when not in a frame.
 */
function parentOrigins(sources) {
  if (window.parent === window) return [];
  const hinted = [location.ancestorOrigins?.[0], originOf(document.referrer)]
    .find((origin) => origin && originAllowed(origin, sources));
  if (hinted) return [hinted];
  return sources
    .map((source) => (source === "'self'" ? location.origin : source))
    .filter((source) => !source.includes('*'));
}

/** The identifier a screen pop names, or a string saying what is wrong. */
function identifierOf(message) {
  let given = message.identifier;
  if (given === undefined) {
    // The short form, as in screen-pop URLs: {type, phone: '+4420...'}.
    const kind = KINDS.find((name) => Object.hasOwn(message, name));
    given = kind ? { kind, value: message[kind] } : undefined;
  }
  if (!given || typeof given !== 'object') return 'identifier must be an object {kind, value}';
  const { kind, value } = given;
  if (!KINDS.includes(kind)) return `identifier.kind must be one of ${KINDS.join(', ')}`;
  if (typeof value !== 'string' || !value.trim()) return 'identifier.value must be a non-empty string';
  if (value.length > MAX_LENGTH) return `identifier.value is longer than ${MAX_LENGTH} characters`;
  return { kind, value: value.trim() };
}

/** The request id to echo: a short string or a number, else null. */
function requestIdOf(message) {
  const id = message.request_id;
  if (typeof id === 'number' && Number.isFinite(id)) return id;
  if (typeof id === 'string' && id.length <= MAX_LENGTH) return id;
  return null;
}

/** The error code of an API problem (ApiProblem's status). */
function errorOf(problem) {
  switch (problem?.status) {
    case 400: return 'invalid_identifier';
    case 401: return 'signed_out';
    case 403: return 'forbidden';
    case 0: return 'unreachable';
    case 503: return 'unavailable';
    default: return 'failed';
  }
}

/**
 * The answer to a screen pop, from what opening it came to: `{customerId}`
 * (null: nobody has that identifier yet), `{problem}` (an ApiProblem), or
 * `{error, detail}`.
 */
export function answerOf(requestId, identifier, outcome) {
  const base = { version: VERSION, request_id: requestId };
  if (outcome.problem || outcome.error) {
    return {
      ...base,
      type: 'panorama.error',
      error: outcome.error ?? errorOf(outcome.problem),
      detail: outcome.detail ?? outcome.problem?.message ?? '',
    };
  }
  const found = Boolean(outcome.customerId);
  return {
    ...base,
    type: 'panorama.customer',
    status: found ? 'found' : 'not_found',
    customer_id: found ? outcome.customerId : null,
    identifier,
    url: found ? `${location.origin}/#customer/${outcome.customerId}` : null,
  };
}

/**
 * Starts listening for screen pops when the console may be framed at all.
 * `open({kind, value}, respond)` shows the card and calls `respond(outcome)`
 * once, before its promise settles or later (after sign-in). Screen pops
 * are handled one after another, in the order they came, so the last one
 * sent is the card shown. Gives `ready(signedIn)`, which tells the parent
 * the console is listening.
 */
export function listenForScreenPops(open) {
  const sources = frameAncestors();
  if (sources.length === 0) return () => {};
  let queue = Promise.resolve();
  window.addEventListener('message', (event) => {
    if (!event.source || !originAllowed(event.origin, sources)) return;
    const message = event.data;
    // The desktop's own traffic shares the channel: only ours is answered.
    if (!message || typeof message !== 'object' || typeof message.type !== 'string'
      || !message.type.startsWith('panorama.') || ANSWERS.includes(message.type)) return;
    const target = event.source;
    const origin = event.origin;
    const requestId = requestIdOf(message);
    const reply = (answer) => target.postMessage(answer, origin);
    const refuse = (error, detail) => reply(answerOf(requestId, null, { error, detail }));
    if (message.type !== 'panorama.screenpop') {
      return refuse('unsupported_message', `unknown message type ${message.type}`);
    }
    const version = message.version ?? VERSION;
    if (version !== VERSION) {
      return refuse('unsupported_version', `this console speaks version ${VERSION}`);
    }
    const identifier = identifierOf(message);
    if (typeof identifier === 'string') return refuse('invalid_message', identifier);
    let answered = false;
    const respond = (outcome) => {
      if (answered) return;
      answered = true;
      reply(answerOf(requestId, identifier, outcome));
    };
    queue = queue
      .then(() => open(identifier, respond))
      .catch((error) => respond({ error: 'failed', detail: String(error?.message ?? error) }));
    return undefined;
  });
  return (signedIn) => {
    for (const origin of parentOrigins(sources)) {
      window.parent.postMessage({ type: 'panorama.ready', version: VERSION, signed_in: signedIn }, origin);
    }
  };
}
