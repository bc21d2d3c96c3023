// The timeline: newest first, older pages loaded as the agent scrolls (an
// IntersectionObserver on a sentinel at the end) or with the "Load older"
// button, over the API's keyset cursor. Live entries are added at the top.

import { api, explain } from './api.js';
import { claimed, KIND_NAMES, CONSENT_CHANNELS, CONSENT_PURPOSES } from './card.js';
import { h, icon, time, humanize, channelName, replace } from './dom.js';

/** The claimed identifiers an event carried: shown, never linked to anyone. */
function claims(entry, customerId) {
  const list = (entry.identifiers ?? []).filter((i) => i.trust === 'claimed');
  if (list.length === 0) return null;
  return h('ul', { class: 'entry-claims', 'aria-label': 'Claimed identifiers' },
    list.map((i) => h('li', { 'data-testid': 'entry-claim' },
      h('span', {}, `${KIND_NAMES[i.kind] ?? i.kind} `),
      h('span', { class: 'mono' }, i.value),
      claimed(customerId, i.kind, i.value))));
}

/** The contact preferences an event stated. */
function consentStated(entry) {
  const list = entry.consent ?? [];
  if (list.length === 0) return null;
  return h('p', { class: 'entry-consent', 'data-testid': 'entry-consent' },
    list.map((c) => `${CONSENT_CHANNELS[c.channel] ?? c.channel} · ${CONSENT_PURPOSES[c.purpose] ?? c.purpose}: ${c.granted ? 'allowed' : 'refused'}`)
      .join('; '));
}

function entryView(entry, customerId) {
  const feedback = entry.feedback
    ? `${String(entry.feedback.metric ?? '').toUpperCase()} ${entry.feedback.score ?? ''}${entry.feedback.comment ? ` — “${entry.feedback.comment}”` : ''}`
    : null;
  const details = [
    entry.direction ? humanize(entry.direction) : null,
    entry.source && entry.source !== entry.channel ? entry.source : null,
    entry.duration_seconds ? `${Math.round(entry.duration_seconds / 60)} min` : null,
    entry.agent_id ? `by ${entry.agent_id}` : null,
    entry.queue ? `queue ${entry.queue}` : null,
  ].filter(Boolean).join(' · ');
  return h('li', { class: `entry ch-${entry.channel}`, 'data-testid': 'timeline-entry', dataset: { eventId: entry.event_id } },
    h('span', { class: 'entry-icon' }, icon(entry.channel)),
    h('div', { class: 'entry-body' },
      h('p', { class: 'entry-head' },
        h('strong', {}, humanize(entry.type)),
        h('span', { class: 'entry-channel' }, channelName(entry.channel)),
        time(entry.occurred_at)),
      entry.subject ? h('p', { class: 'entry-subject' }, entry.subject) : null,
      entry.contact_reason ? h('p', { class: 'entry-reason' }, entry.contact_reason) : null,
      entry.summary ? h('p', { class: 'entry-summary' }, entry.summary) : null,
      entry.outcome ? h('p', { class: 'entry-outcome' }, `Outcome: ${entry.outcome}`) : null,
      feedback ? h('p', { class: 'entry-feedback' }, feedback) : null,
      consentStated(entry),
      claims(entry, customerId),
      details ? h('p', { class: 'entry-details muted' }, details) : null));
}

/** A customer's timeline in `container`; `destroy()` when leaving. */
export class Timeline {
  constructor(container, customerId) {
    this.customerId = customerId;
    this.cursor = null;
    this.done = false;
    this.loading = false;
    this.seen = new Set();
    this.list = h('ol', { class: 'timeline', 'aria-label': 'Contacts, newest first', 'data-testid': 'timeline' });
    this.status = h('p', { class: 'timeline-status muted', role: 'status' });
    this.more = h('button', { type: 'button', class: 'secondary load-more', 'data-testid': 'load-more' }, 'Load older');
    this.more.addEventListener('click', () => this.load());
    this.sentinel = h('div', { class: 'sentinel', 'aria-hidden': 'true' });
    replace(container,
      h('h2', { id: 'h-timeline' }, 'Timeline'),
      this.list, this.sentinel, this.status, this.more);
    this.observer = new IntersectionObserver((seen) => {
      if (seen.some((e) => e.isIntersecting)) this.load();
    }, { root: container, rootMargin: '200px' });
    this.observer.observe(this.sentinel);
    this.controller = new AbortController();
    this.load();
  }

  async load() {
    if (this.loading || this.done) return;
    this.loading = true;
    this.status.textContent = 'Loading…';
    try {
      const page = await api.timeline(this.customerId, this.cursor, this.controller.signal);
      for (const entry of page.entries) this.add(entry, 'end');
      this.cursor = page.next_cursor ?? null;
      this.done = !this.cursor;
      this.status.textContent = this.done
        ? (this.seen.size === 0 ? 'No contacts yet' : 'Start of history') : '';
      this.more.hidden = this.done;
    } catch (problem) {
      if (problem.name === 'AbortError') return;
      this.status.textContent = `Could not load the timeline: ${explain(problem)}`;
    } finally {
      this.loading = false;
    }
    // A short first page may leave the sentinel in view: keep going.
    if (!this.done && this.sentinelVisible()) this.load();
  }

  sentinelVisible() {
    const box = this.sentinel.getBoundingClientRect();
    const root = this.list.parentElement.getBoundingClientRect();
    return box.top < root.bottom + 200;
  }

  /** Adds an entry once: at the end (older pages) or in order (live). */
  add(entry, where = 'ordered') {
    if (this.seen.has(entry.event_id)) return false;
    this.seen.add(entry.event_id);
    const view = entryView(entry, this.customerId);
    if (where === 'end') {
      this.list.append(view);
      return true;
    }
    view.classList.add('entry-new');
    // Newest first by occurred_at: a late event goes where it belongs.
    const at = Date.parse(entry.occurred_at);
    const before = [...this.list.children].find((li) =>
      Date.parse(li.querySelector('time')?.getAttribute('datetime')) <= at);
    this.list.insertBefore(view, before ?? null);
    if (!before && !this.done) view.remove(); // older than what is loaded: its page brings it
    return true;
  }

  destroy() {
    this.observer.disconnect();
    this.controller.abort();
  }
}
