// The 360 card: who the customer is, how they reached us, how they felt,
// and what an agent should notice at a glance.

import { api, explain } from './api.js';
import { h, icon, time, channelName, humanize, plural } from './dom.js';

const KIND_NAMES = {
  phone: 'Phone', email: 'Email', account: 'Account', whatsapp: 'WhatsApp',
  messenger: 'Messenger', instagram: 'Instagram', x: 'X', visitor: 'Web visitor',
};

const SIGNALS = [
  ['repeat_contact', 'Repeat contact', 'Two or more contacts on one open case'],
  ['channel_hop', 'Channel hop', 'An open case touched through two or more channels'],
  ['unresolved_after_contact', 'Unresolved after contact', 'An open case nobody got back on'],
];

const METRICS = [
  ['nps', 'NPS', 10], ['csat', 'CSAT', 5], ['ces', 'CES', 7],
];

/** Names of the channels a consent statement can be about. */
export const CONSENT_CHANNELS = {
  any: 'Any channel', phone: 'Phone', email: 'Email', sms: 'SMS', whatsapp: 'WhatsApp',
  messenger: 'Messenger', instagram: 'Instagram', web: 'Web',
};

/** What a consent statement can be about. */
export const CONSENT_PURPOSES = { service: 'Service', marketing: 'Marketing', surveys: 'Surveys' };

/** A readable name: the display name, else the first strong identifier. */
export function nameOf(profile) {
  if (profile.display_name) return profile.display_name;
  for (const kind of ['account', 'phone', 'email', 'whatsapp', 'messenger', 'instagram', 'x']) {
    const first = profile.identifiers?.[kind]?.[0];
    if (first) return first.value;
  }
  return 'Unnamed customer';
}

function initials(name) {
  const letters = name.split(/\s+/).filter((w) => /^\p{L}/u.test(w)).map((w) => w[0]);
  return (letters.length ? letters.slice(0, 2).join('') : '#').toUpperCase();
}

function tier(priority) {
  const name = priority || 'normal';
  return h('span', { class: `tier tier-${name.replace(/[^a-z0-9-]/gi, '')}`, 'data-testid': 'priority' },
    `${humanize(name)} priority`);
}

function stat(value, label, testid) {
  return h('div', { class: 'stat', 'data-testid': testid },
    h('span', { class: 'stat-value' }, value), h('span', { class: 'stat-label' }, label));
}

function signals(profile) {
  const raised = SIGNALS.filter(([key]) => profile.signals?.[key]);
  if (raised.length === 0) return h('p', { class: 'muted signals-none' }, 'No signals');
  return h('ul', { class: 'signals', 'aria-label': 'Signals' },
    raised.map(([key, label, hint]) => h('li', { class: `signal signal-${key}`, title: hint }, label)));
}

function channels(profile) {
  const list = [...(profile.channels ?? [])].sort((a, b) => b.count - a.count);
  if (list.length === 0) return h('p', { class: 'muted' }, 'No contacts yet');
  const top = Math.max(...list.map((c) => c.count), 1);
  return h('ul', { class: 'channel-counts' }, list.map((c) => {
    const bar = h('span', { class: 'bar-fill' });
    bar.style.width = `${Math.max(4, (c.count / top) * 100)}%`;
    return h('li', { dataset: { channel: c.channel } },
      icon(c.channel, `ch-${c.channel}`),
      h('span', { class: 'channel-name' }, channelName(c.channel)),
      h('span', { class: 'bar', 'aria-hidden': 'true' }, bar),
      h('span', { class: 'channel-count' }, String(c.count)));
  }));
}

function feedback(profile) {
  const given = METRICS.filter(([key]) => profile.feedback?.[key]);
  if (given.length === 0) return h('p', { class: 'muted' }, 'No survey answers');
  return h('div', { class: 'stats stats-feedback' }, given.map(([key, label, scale]) => {
    const m = profile.feedback[key];
    return h('div', { class: 'stat', 'data-testid': `feedback-${key}` },
      h('span', { class: 'stat-value' }, String(m.latest), h('small', {}, ` / ${scale}`)),
      h('span', { class: 'stat-label' }, label),
      h('span', { class: 'stat-sub' }, `avg ${m.average.toFixed(1)} · ${plural(m.responses, 'answer')}`));
  }));
}

/**
 * The customer's contact preferences: the latest statement per channel and
 * purpose, and the channels a follow-up may not use (a follow-up is a
 * service contact).
 */
function consent(profile) {
  const statements = profile.consent ?? [];
  const refused = Object.entries(profile.follow_up_consent ?? {})
    .filter(([, status]) => status === 'refused')
    .map(([channel]) => channel);
  const followUps = refused.length === 0 ? null
    : h('p', { class: 'consent-follow-up', 'data-testid': 'follow-up-refused' },
      'No follow-up by ',
      refused.flatMap((channel, index) => [index > 0 ? ', ' : null,
        h('strong', { dataset: { channel } }, channelName(channel))]));
  if (statements.length === 0) {
    return h('p', { class: 'muted', 'data-testid': 'consent-none' }, 'No preferences recorded');
  }
  return [h('ul', { class: 'consent', 'aria-label': 'Contact preferences', 'data-testid': 'consent' },
    statements.map((s) => h('li', {
      'data-testid': 'consent-statement',
      dataset: { channel: s.channel, purpose: s.purpose, granted: String(s.granted) },
    },
    h('span', { class: 'consent-what' },
      `${CONSENT_CHANNELS[s.channel] ?? s.channel} · ${CONSENT_PURPOSES[s.purpose] ?? s.purpose}`),
    h('span', { class: `badge badge-${s.granted ? 'allowed' : 'refused'}` }, s.granted ? 'allowed' : 'refused'),
    h('span', { class: 'consent-when muted' }, time(s.at, { relativeOnly: true }),
      s.source ? ` · ${s.source}` : '')))),
  followUps];
}

/** How a trait's value reads: times as times, flags as yes/no, the rest as given. */
function traitValue(t) {
  if (t.type === 'timestamp') return time(t.value);
  if (t.type === 'boolean') return t.value ? 'yes' : 'no';
  return String(t.value);
}

/**
 * The customer's traits (the latest `customer.*` attributes, e.g. from a
 * CRM or Segment `identify`): name, value, and when and where it came from.
 */
function traits(profile) {
  const list = Object.entries(profile.traits ?? {});
  if (list.length === 0) return h('p', { class: 'muted', 'data-testid': 'traits-none' }, 'No traits recorded');
  return h('dl', { class: 'traits', 'aria-label': 'Traits', 'data-testid': 'traits' }, list.flatMap(([name, t]) => [
    h('dt', { dataset: { trait: name } }, humanize(name)),
    h('dd', { 'data-testid': 'trait', dataset: { trait: name, type: t.type } },
      h('span', { class: `trait-value trait-${t.type}` }, traitValue(t)),
      h('span', { class: 'trait-when muted' }, ' · ', time(t.at, { relativeOnly: true }),
        t.source ? ` · ${t.source}` : '')),
  ]));
}

/**
 * A claimed identifier: a badge saying anyone could have typed it, and a
 * button for the agent who checked it with the customer to confirm it.
 * The change shows when the projection has it (the live stream).
 */
export function claimed(customerId, kind, value) {
  const status = h('span', { class: 'claim-status muted', role: 'status' });
  const confirm = h('button', {
    type: 'button', class: 'secondary small', 'data-testid': 'confirm-identifier',
    title: 'You checked it with the customer: it becomes verified for this customer',
  }, 'Confirm');
  confirm.addEventListener('click', async () => {
    confirm.disabled = true;
    status.textContent = 'Confirming…';
    try {
      await api.confirmIdentifier(customerId, kind, value);
      status.textContent = 'Confirmed; it shows in a moment.';
    } catch (problem) {
      status.textContent = explain(problem);
      confirm.disabled = false;
    }
  });
  return h('span', { class: 'claim' },
    h('span', {
      class: 'badge badge-claimed', 'data-testid': 'claimed',
      title: 'Claimed: typed into a web form or chat, so anyone could have sent it. It never links customers until confirmed.',
    }, 'claimed'),
    confirm, status);
}

function identifiers(profile) {
  const kinds = Object.entries(profile.identifiers ?? {});
  if (kinds.length === 0) return h('p', { class: 'muted' }, 'None');
  return h('dl', { class: 'identifiers' }, kinds.flatMap(([kind, values]) => [
    h('dt', {}, KIND_NAMES[kind] ?? kind),
    h('dd', {}, h('ul', {}, values.map((v) => h('li', { dataset: { trust: v.trust ?? 'verified' } },
      h('span', { class: 'mono' }, v.value),
      v.trust === 'claimed' ? claimed(profile.id, kind, v.value) : null)))),
  ]));
}

/** The card of a known customer. */
export function profileCard(profile) {
  const name = nameOf(profile);
  const contacts = profile.contacts ?? {};
  return h('article', { class: 'card', 'aria-labelledby': 'customer-name', 'data-testid': 'customer-card' },
    h('header', { class: 'card-head' },
      h('div', { class: 'avatar', 'aria-hidden': 'true' }, initials(name)),
      h('div', { class: 'card-title' },
        h('h2', { id: 'customer-name' }, name),
        h('p', { class: 'muted' }, `${plural(profile.event_count, 'event')} · last contact `,
          time(profile.last_contact_at, { relativeOnly: true }))),
      tier(profile.signals?.priority)),
    signals(profile),
    h('section', { 'aria-labelledby': 'h-contacts' },
      h('h3', { id: 'h-contacts' }, 'Contacts'),
      h('div', { class: 'stats' },
        stat(contacts.last_7_days ?? 0, 'last 7 days', 'contacts-7'),
        stat(contacts.last_30_days ?? 0, 'last 30 days', 'contacts-30'),
        stat(contacts.last_90_days ?? 0, 'last 90 days', 'contacts-90')),
      channels(profile)),
    h('section', { 'aria-labelledby': 'h-feedback' }, h('h3', { id: 'h-feedback' }, 'Feedback'), feedback(profile)),
    h('section', { 'aria-labelledby': 'h-consent' }, h('h3', { id: 'h-consent' }, 'Contact preferences'), consent(profile)),
    h('section', { 'aria-labelledby': 'h-traits' }, h('h3', { id: 'h-traits' }, 'Traits'), traits(profile)),
    h('section', { 'aria-labelledby': 'h-identifiers' }, h('h3', { id: 'h-identifiers' }, 'Identifiers'), identifiers(profile)));
}

/** The card of an identifier nobody owns yet: an unknown caller. */
export function unknownCard(kind, value) {
  return h('article', { class: 'card card-unknown', 'aria-labelledby': 'customer-name', 'data-testid': 'unknown-card' },
    h('header', { class: 'card-head' },
      h('div', { class: 'avatar avatar-unknown', 'aria-hidden': 'true' }, '?'),
      h('div', { class: 'card-title' },
        h('h2', { id: 'customer-name' }, 'New contact'),
        h('p', { class: 'muted' }, `No customer has this ${KIND_NAMES[kind] ?? kind} yet.`))),
    h('dl', { class: 'identifiers' }, h('dt', {}, KIND_NAMES[kind] ?? kind), h('dd', { class: 'mono' }, value)),
    h('p', {}, 'Write a first note: it creates the customer, and this card fills in.'));
}

export { KIND_NAMES };
