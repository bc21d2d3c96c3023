// The agent console: sign-in, search and screen pop, the customer view with
// live updates, and the ops view. Routes live in the URL: `#customer/<id>`,
// `#ops`, and `?phone=...` (or another identifier kind) for a screen pop.
// Inside an agent desktop's frame, screen pops also come by postMessage
// (embed.js).

import { api, token, whenUnauthorized, explain, ApiProblem } from './api.js';
import { follow } from './sse.js';
import { h, replace, channelName, humanize } from './dom.js';
import { profileCard, unknownCard, nameOf } from './card.js';
import { casesSection, actionsSection, firstNoteForm } from './actions.js';
import { Timeline } from './timeline.js';
import { opsView } from './ops.js';
import { listenForScreenPops, KINDS } from './embed.js';

/** How long the page waits for a first note to create its customer. */
const CREATE_DEADLINE_MS = 20000;

const $ = (id) => document.getElementById(id);
const views = ['signin-view', 'home-view', 'customer-view', 'ops-view'];

let current = null; // { id, timeline, stream }
let lastCustomerId = null;
// A screen pop waiting for sign-in; one from the desktop carries `respond`
// (its answer) and `release` (lets the next one through).
let pendingPop = screenPopOf(new URLSearchParams(location.search));
/** Tells the desktop framing the console that it listens (embed.js). */
const ready = listenForScreenPops(popFromHost);
let toldSignedIn = null;

/** Tells the desktop, once per change, whether an agent is signed in. */
function tellHost(signedIn) {
  if (signedIn === toldSignedIn) return;
  toldSignedIn = signedIn;
  ready(signedIn);
}

function show(view) {
  for (const id of views) $(id).hidden = id !== view;
  const signedIn = view !== 'signin-view';
  $('search').hidden = !signedIn;
  $('sign-out').hidden = !signedIn;
  $('views-nav').hidden = !signedIn;
  $('nav-ops').setAttribute('aria-current', view === 'ops-view' ? 'page' : 'false');
  $('nav-customer').setAttribute('aria-current', view === 'ops-view' ? 'false' : 'page');
}

function notice(message) {
  const box = $('notice');
  box.textContent = message ?? '';
  box.hidden = !message;
}

function announce(message) {
  const live = $('live');
  live.textContent = '';
  // A fresh text node, so screen readers announce repeats too.
  setTimeout(() => { live.textContent = message; }, 50);
}

/** The identifier of a screen-pop URL (`?phone=+31...`), if any. */
function screenPopOf(query) {
  for (const kind of KINDS) {
    const value = query.get(kind);
    if (value && value.trim()) return { kind, value: value.trim() };
  }
  return null;
}

/** Guesses the kind of what an agent typed. */
export function detectKind(text) {
  const value = text.trim();
  if (/^\+?[\d\s().-]{6,}$/.test(value)) return 'phone';
  if (/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(value)) return 'email';
  if (/^@\w{1,15}$/.test(value)) return 'x';
  return 'account';
}

function leaveCustomer() {
  current?.timeline.destroy();
  current?.stream.close();
  current = null;
  const badge = $('live-state');
  badge.dataset.state = 'off';
  badge.textContent = '';
}

function signOut(message) {
  leaveCustomer();
  token.clear();
  tellHost(false);
  show('signin-view');
  const box = $('signin-message');
  box.textContent = message ?? '';
  box.hidden = !message;
  $('token').value = '';
  $('token').focus();
}

whenUnauthorized((detail) => signOut(`You were signed out: ${detail}. Sign in again with a valid agent token.`));

async function signIn(event) {
  event.preventDefault();
  const value = $('token').value.trim();
  const box = $('signin-message');
  if (!value) {
    box.textContent = 'Enter your agent token.';
    box.hidden = false;
    return;
  }
  token.set(value);
  try {
    // A cheap call that needs the agent role: proves the token works here.
    await api.tasks('00000000-0000-0000-0000-000000000000');
  } catch (problem) {
    const fine = problem.status === 404 || problem.status === 400;
    if (!fine) {
      token.clear();
      box.textContent = problem.status === 401
        ? `Sign-in refused: ${problem.message}.`
        : problem.status === 403
          ? 'This token is valid but has no agent role. The console needs an agent (or admin) token.'
          : explain(problem);
      box.hidden = false;
      return;
    }
  }
  box.hidden = true;
  tellHost(true);
  route();
}

/**
 * Opens the customer owning an identifier, or the empty card for it. Says
 * which: `{customerId}` (null for the empty card) or `{problem}`.
 */
async function openIdentifier(kind, value) {
  notice('');
  try {
    const profile = await api.lookup(kind, value);
    history.replaceState(null, '', `/#customer/${profile.id}`);
    openCustomer(profile);
    return { customerId: profile.id };
  } catch (problem) {
    if (problem.status === 404) {
      openUnknown(kind, value);
      return { customerId: null };
    }
    if (problem.status !== 401) notice(problem.status === 400 ? `Not a valid ${kind}: ${problem.message}` : explain(problem));
    return { problem };
  }
}

/**
 * A screen pop from the desktop framing the console. Signed out, it waits
 * for sign-in (holding back the ones after it, so the last one sent is
 * still the card shown) and is answered then.
 */
function popFromHost({ kind, value }, respond) {
  if (token.get()) return openIdentifier(kind, value).then(respond);
  return new Promise((release) => {
    holdPop({ kind, value, respond, release });
    route();
  });
}

/** Makes `pop` the one waiting for sign-in; a desktop's pop it replaces is answered. */
function holdPop(pop) {
  if (pendingPop?.respond) {
    pendingPop.respond({ error: 'superseded', detail: 'another screen pop came before sign-in' });
    pendingPop.release();
  }
  pendingPop = pop;
}

function openUnknown(kind, value) {
  leaveCustomer();
  show('customer-view');
  history.replaceState(null, '', `/?${new URLSearchParams({ [kind]: value })}`);
  replace($('card-col'), unknownCard(kind, value));
  replace($('work-col'), firstNoteForm(kind, value, () => waitForCustomer(kind, value)));
  replace($('timeline-col'), h('h2', { id: 'h-timeline' }, 'Timeline'), h('p', { class: 'muted' }, 'No contacts yet'));
  document.title = 'New contact — Panorama';
}

/** After a first note: polls lookup until the projector created the customer. */
async function waitForCustomer(kind, value) {
  const deadline = Date.now() + CREATE_DEADLINE_MS;
  let wait = 250;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(wait * 2, 2000);
    try {
      const profile = await api.lookup(kind, value);
      announce(`Customer created for ${value}`);
      history.replaceState(null, '', `/#customer/${profile.id}`);
      return openCustomer(profile);
    } catch (problem) {
      if (problem.status !== 404) return notice(explain(problem));
    }
  }
  notice('The note was saved but the customer has not appeared yet; search again in a moment.');
}

/** Whether the agent is typing in a form of `container`. */
function typing(container) {
  return [...container.querySelectorAll('form:not([hidden]) input, form:not([hidden]) textarea')]
    .some((control) => control.value !== control.defaultValue);
}

/** Redraws cases and tasks, but never under the agent's hands. */
async function refreshWork(id) {
  const column = $('work-col');
  if (typing(column)) {
    setTimeout(() => { if (current?.id === id) refreshWork(id); }, 1500);
    return;
  }
  const [cases, tasks] = await Promise.all([
    api.cases(id).catch(() => null),
    api.tasks(id).catch(() => null),
  ]);
  if (current?.id !== id) return;
  if (typing(column)) return refreshWork(id);
  replace(column, casesSection(cases), actionsSection(id, cases, tasks));
}

function openCustomer(profile) {
  leaveCustomer();
  show('customer-view');
  notice('');
  const id = profile.id;
  replace($('card-col'), profileCard(profile));
  replace($('work-col'), h('p', { class: 'muted' }, 'Loading cases…'));
  document.title = `${nameOf(profile)} — Panorama`;
  const timeline = new Timeline($('timeline-col'), id);
  const stream = follow(id, {
    onEvent: (message) => onLive(id, message),
    onState: (state, detail) => {
      const badge = $('live-state');
      badge.dataset.state = state;
      badge.textContent = state === 'live' ? 'Live' : state === 'reconnecting' ? 'Reconnecting…' : 'Offline';
      badge.title = detail ?? '';
    },
    onUnauthorized: () => signOut('You were signed out: the token is unknown or revoked.'),
  });
  current = { id, timeline, stream };
  lastCustomerId = id;
  refreshWork(id);
}

function onLive(id, { event, data }) {
  if (current?.id !== id || !data) return;
  if (data.customer_id && data.customer_id !== id) {
    // Merged into another customer: follow the survivor.
    api.profile(data.customer_id).then(openCustomer).catch(() => {});
    return;
  }
  if (event === 'timeline' && data.entry) {
    if (current.timeline.add(data.entry)) {
      const entry = data.entry;
      announce(entry.channel === 'agent'
        ? `${humanize(entry.type)} by ${entry.agent_id ?? 'an agent'}`
        : `New ${channelName(entry.channel)} contact: ${humanize(entry.type)}`);
    }
  } else if (event === 'profile' && data.profile) {
    replace($('card-col'), profileCard(data.profile));
    refreshWork(id);
  } else {
    refreshWork(id);
  }
}

async function search(event) {
  event.preventDefault();
  const value = $('search-value').value.trim();
  if (!value) return $('search-value').focus();
  const chosen = $('search-kind').value;
  const kind = chosen === 'auto' ? detectKind(value) : chosen;
  await openIdentifier(kind, kind === 'x' ? value.replace(/^@/, '') : value);
}

/** Shows what the URL asks for. */
function route() {
  if (!token.get()) return signOut(pendingPop ? 'Sign in to open the caller’s card.' : '');
  if (pendingPop) {
    const { kind, value, respond, release } = pendingPop;
    pendingPop = null;
    return openIdentifier(kind, value)
      .then((outcome) => respond?.(outcome))
      .finally(() => release?.());
  }
  const hash = location.hash.slice(1);
  if (hash === 'ops') {
    leaveCustomer();
    show('ops-view');
    document.title = 'Insights — Panorama';
    return opsView($('ops-view'));
  }
  const match = /^customer\/([0-9a-f-]{36})$/i.exec(hash);
  if (match) {
    if (current?.id === match[1] && !$('customer-view').hidden) return undefined;
    return api.profile(match[1]).then(openCustomer).catch((problem) => {
      if (problem instanceof ApiProblem && problem.status !== 401) notice(explain(problem));
    });
  }
  if (current) return show('customer-view');
  show('home-view');
  document.title = 'Panorama';
  return $('search-value').focus();
}

$('signin-form').addEventListener('submit', signIn);
$('search').addEventListener('submit', search);
$('sign-out').addEventListener('click', () => signOut('Signed out.'));
$('nav-customer').addEventListener('click', (event) => {
  if (lastCustomerId) {
    event.preventDefault();
    history.pushState(null, '', `/#customer/${lastCustomerId}`);
    route();
  }
});
window.addEventListener('hashchange', route);
window.addEventListener('popstate', () => {
  const fromUrl = screenPopOf(new URLSearchParams(location.search));
  // The desktop's screen pop keeps waiting, unless the URL brings another.
  if (fromUrl || !pendingPop?.respond) holdPop(fromUrl);
  route();
});
route();
tellHost(Boolean(token.get()));
