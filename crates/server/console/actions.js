// What an agent does about a customer: resolve a case, add a note, plan a
// follow-up, or write the first note about an unknown caller. Every action
// is answered 202 (published as an event); the page shows the change when
// the projection has it, through the live stream. Problems show next to the
// field they name.

import { api, explain } from './api.js';
import { h, icon, time, channelName, field } from './dom.js';
import { CONSENT_CHANNELS, CONSENT_PURPOSES } from './card.js';

const CHANNELS = ['phone', 'email', 'web', 'chat', 'social', 'sms'];

/** Shows a problem next to the control it names, or at the top of the form. */
export function showProblem(form, problem) {
  clearProblems(form);
  const name = problem.field?.split('.').pop();
  const control = name ? form.querySelector(`[name="${CSS.escape(name)}"]`) : null;
  const slot = control ? form.querySelector(`#${CSS.escape(control.id)}-error`) : null;
  if (control && slot) {
    control.setAttribute('aria-invalid', 'true');
    slot.textContent = problem.message;
    slot.hidden = false;
    control.focus();
    return;
  }
  const general = form.querySelector('.form-error');
  general.textContent = explain(problem);
  general.hidden = false;
}

function clearProblems(form) {
  for (const control of form.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid');
  for (const slot of form.querySelectorAll('.field-error, .form-error')) {
    slot.textContent = '';
    slot.hidden = true;
  }
}

/** A form whose submit calls `send(values)`; `done(answer)` after a 202. */
function actionForm(testid, label, controls, submitLabel, send, done) {
  const status = h('p', { class: 'form-status', role: 'status' });
  const form = h('form', { class: 'action-form', 'data-testid': testid, 'aria-label': label, novalidate: true },
    controls, h('p', { class: 'form-error', role: 'alert', hidden: true }),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary' }, submitLabel), status));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearProblems(form);
    const values = Object.fromEntries(new FormData(form));
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    status.textContent = 'Sending…';
    try {
      const answer = await send(values);
      status.textContent = 'Sent; it appears in a moment.';
      form.reset();
      done?.(answer);
    } catch (problem) {
      status.textContent = '';
      showProblem(form, problem);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function textInput(name, attributes = {}) {
  return h('input', { name, type: 'text', autocomplete: 'off', ...attributes });
}

function textArea(name, attributes = {}) {
  return h('textarea', { name, rows: 2, ...attributes });
}

/** An open/close toggle for a form: a button with aria-expanded. */
function disclosure(label, form, testid) {
  form.hidden = true;
  const button = h('button', { type: 'button', class: 'secondary', 'aria-expanded': 'false', 'data-testid': testid });
  button.append(label);
  button.addEventListener('click', () => {
    const open = form.hidden;
    form.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    if (open) form.querySelector('input, textarea, select')?.focus();
  });
  return button;
}

function resolveForm(kase) {
  return actionForm('resolve-form', `Resolve case ${kase.reason ?? ''}`, [
    field('Outcome', textInput('outcome', { required: true, maxlength: 200, list: 'outcomes' })),
    field('Resolution note (optional)', textArea('note', { maxlength: 4000 })),
  ], 'Resolve case', (v) => api.resolveCase(kase.id, v.outcome.trim(), v.note.trim()));
}

function caseItem(kase) {
  const open = kase.status === 'open';
  const item = h('li', { class: `case case-${kase.status}`, 'data-testid': 'case', dataset: { caseId: kase.id, status: kase.status } },
    h('div', { class: 'case-head' },
      h('span', { class: `badge badge-${kase.status}` }, open ? 'Open' : 'Resolved'),
      h('strong', { class: 'case-reason' }, kase.reason || 'No contact reason')),
    h('p', { class: 'case-meta' },
      h('span', { class: 'case-channels', 'aria-label': 'Channels' },
        (kase.channels ?? []).map((c) => h('span', { class: 'chip' }, icon(c, `ch-${c}`), channelName(c)))),
      ` ${kase.contact_count} contact${kase.contact_count === 1 ? '' : 's'} · opened `,
      time(kase.opened_at, { relativeOnly: true })),
    open ? null : h('p', { class: 'case-outcome' }, 'Outcome: ', h('strong', {}, kase.outcome ?? '—'),
      kase.resolution_note ? ` — ${kase.resolution_note}` : ''));
  if (open) {
    const form = resolveForm(kase);
    item.append(h('div', { class: 'case-actions' }, disclosure('Resolve…', form, 'resolve-toggle')), form);
  }
  return item;
}

/** The customer's recent cases, open ones with a resolve action. */
export function casesSection(page) {
  const cases = page?.cases ?? [];
  return h('section', { class: 'panel', 'aria-labelledby': 'h-cases', 'data-testid': 'cases' },
    h('h2', { id: 'h-cases' }, 'Cases'),
    cases.length === 0 ? h('p', { class: 'muted' }, 'No cases yet')
      : h('ul', { class: 'cases' }, cases.map(caseItem)),
    h('datalist', { id: 'outcomes' }, ['Resolved', 'Refunded', 'Replacement sent', 'Information given',
      'Escalated', 'No action needed'].map((o) => h('option', { value: o }))));
}

/** A follow-up task, marked when the customer refused its channel. */
function taskItem(task) {
  const refused = task.consent === 'refused';
  return h('li', { class: refused ? 'task task-refused' : 'task', dataset: { consent: task.consent ?? 'unknown' } },
    icon(task.channel, `ch-${task.channel}`), h('span', {}, task.title), ' · due ', time(task.due_at),
    refused ? h('span', {
      class: 'badge badge-refused', 'data-testid': 'task-refused',
      title: `The customer refused service contact by ${channelName(task.channel)}`,
    }, `${channelName(task.channel)} refused`) : null);
}

function openCaseOptions(cases) {
  return [h('option', { value: '' }, 'No case'),
    ...(cases ?? []).filter((c) => c.status === 'open').map((c) => h('option', { value: c.id }, c.reason || c.id))];
}

/** Note and follow-up task forms for a known customer. */
export function actionsSection(customerId, page, tasks) {
  const note = actionForm('note-form', 'Add a note', [
    field('Note', textArea('text', { required: true, maxlength: 4000, rows: 3 })),
    field('About case', h('select', { name: 'case_id' }, openCaseOptions(page?.cases))),
  ], 'Add note', (v) => api.addNote(customerId, v.text.trim(), v.case_id));
  const due = new Date(Date.now() + 24 * 3600 * 1000);
  due.setMinutes(0, 0, 0);
  const local = new Date(due.getTime() - due.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  const task = actionForm('task-form', 'Create a follow-up task', [
    field('Title', textInput('title', { required: true, maxlength: 200 })),
    h('div', { class: 'field-row' },
      field('Due', h('input', { name: 'due_at', type: 'datetime-local', required: true, value: local })),
      field('Channel', h('select', { name: 'channel' }, CHANNELS.map((c) => h('option', { value: c }, channelName(c)))))),
    field('About case', h('select', { name: 'case_id' }, openCaseOptions(page?.cases))),
  ], 'Create task', (v) => api.createTask(customerId, {
    title: v.title.trim(),
    due_at: v.due_at ? new Date(v.due_at).toISOString() : '',
    channel: v.channel,
    case_id: v.case_id || undefined,
  }));
  const consent = actionForm('consent-form', 'Record a contact preference', [
    h('div', { class: 'field-row' },
      field('Channel', h('select', { name: 'channel' },
        Object.entries(CONSENT_CHANNELS).map(([value, label]) => h('option', { value }, label)))),
      field('Purpose', h('select', { name: 'purpose' },
        Object.entries(CONSENT_PURPOSES).map(([value, label]) => h('option', { value }, label)))),
      field('Customer', h('select', { name: 'granted' },
        h('option', { value: 'true' }, 'allows'), h('option', { value: 'false' }, 'refuses')))),
    field('Note (optional)', textInput('note', { maxlength: 4000 })),
  ], 'Record preference', (v) => api.recordConsent(customerId, {
    channel: v.channel,
    purpose: v.purpose,
    granted: v.granted === 'true',
    note: v.note.trim() || undefined,
  }));
  const open = (tasks?.tasks ?? []);
  return h('section', { class: 'panel', 'aria-labelledby': 'h-actions' },
    h('h2', { id: 'h-actions' }, 'Follow-up'),
    open.length === 0 ? h('p', { class: 'muted' }, 'No open tasks')
      : h('ul', { class: 'tasks', 'data-testid': 'tasks' }, open.map(taskItem)),
    h('div', { class: 'action-buttons' },
      disclosure('Add note…', note, 'note-toggle'), disclosure('New task…', task, 'task-toggle'),
      disclosure('Preference…', consent, 'consent-toggle')),
    note, task, consent);
}

/** The first note about an unknown caller: it creates the customer. */
export function firstNoteForm(kind, value, sent) {
  const form = actionForm('first-note-form', 'First note', [
    field('First note', textArea('text', { required: true, maxlength: 4000, rows: 4 })),
  ], 'Save note and create customer', (v) => api.addIdentifierNote(kind, value, v.text.trim()), sent);
  return h('section', { class: 'panel', 'aria-labelledby': 'h-first-note' }, h('h2', { id: 'h-first-note' }, 'First note'), form);
}
