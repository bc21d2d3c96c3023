// Small DOM and formatting helpers shared by the views. No framework: `h`
// builds elements, text always goes in as text nodes (never as HTML), so
// whatever a customer wrote cannot become markup.

const SVG = 'http://www.w3.org/2000/svg';

/** An element: h('li', {class: 'x', dataset: {id: 1}, onclick: fn}, 'text', child). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'dataset') Object.assign(element.dataset, value);
    else if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

/** An SVG element with attributes. */
export function s(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `element`. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

const ICONS = new Set(['phone', 'email', 'web', 'chat', 'social', 'sms', 'agent', 'feedback', 'case']);

/** A channel icon from the page's sprite; decorative, the text says the channel. */
export function icon(channel, extra = '') {
  const name = ICONS.has(channel) ? channel : 'web';
  return s('svg', { class: `icon ${extra}`.trim(), 'aria-hidden': 'true', focusable: 'false' },
    s('use', { href: `#i-${name}` }));
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** A `<time>` with an absolute date and a relative hint, or only the hint. */
export function time(iso, { relativeOnly = false } = {}) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const at = new Date(iso);
  return h('time', { datetime: iso, title: dateTime.format(at) },
    relativeOnly ? ago(at) : `${dateTime.format(at)} · ${ago(at)}`);
}

/** "3 hours ago", "in 2 days". */
export function ago(at) {
  const seconds = (at.getTime() - Date.now()) / 1000;
  const units = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400],
    ['hour', 3600], ['minute', 60]];
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return relative.format(Math.round(seconds), 'second');
}

/** "call.ended" → "Call ended". */
export function humanize(type) {
  const text = String(type ?? '').replace(/[._]/g, ' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export const CHANNEL_NAMES = {
  phone: 'Phone', email: 'Email', web: 'Web', chat: 'Chat', social: 'Social', sms: 'SMS',
  agent: 'Agent',
};

export function channelName(channel) {
  return CHANNEL_NAMES[channel] ?? humanize(channel);
}

/** A labelled form field: label, control, and a slot for the field's error. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  control.setAttribute('aria-describedby', `${id}-error`);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control,
    hint ? h('p', { class: 'hint' }, hint) : null, error);
}

/** "1 answer", "3 answers". */
export function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
