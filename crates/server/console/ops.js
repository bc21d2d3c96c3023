// The ops view: the insights figures for a period, drawn as inline SVG
// (bars for contacts per channel, gauges for rates and scores).

import { api, explain } from './api.js';
import { h, s, icon, channelName, replace, field, plural } from './dom.js';

function isoDay(date) {
  return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
}

/** Horizontal bars, one per channel, with the count at the end. */
function channelBars(perChannel) {
  const rows = Object.entries(perChannel ?? {}).sort((a, b) => b[1] - a[1]);
  if (rows.length === 0) return h('p', { class: 'muted' }, 'No contacts in this period');
  const top = Math.max(...rows.map(([, n]) => n), 1);
  const rowHeight = 34;
  const width = 520;
  const labelWidth = 90;
  const svg = s('svg', {
    class: 'chart bars', viewBox: `0 0 ${width} ${rows.length * rowHeight}`, role: 'img',
    'aria-label': `Contacts per channel: ${rows.map(([c, n]) => `${channelName(c)} ${n}`).join(', ')}`,
    'data-testid': 'chart-channels',
  });
  rows.forEach(([channel, count], i) => {
    const y = i * rowHeight;
    const barWidth = Math.max(2, ((width - labelWidth - 60) * count) / top);
    svg.append(
      s('text', { x: 0, y: y + 22, class: 'bar-label' }, channelName(channel)),
      s('rect', { x: labelWidth, y: y + 6, width: barWidth, height: 22, rx: 4, class: `bar-rect ch-${channel}` }),
      s('text', { x: labelWidth + barWidth + 8, y: y + 22, class: 'bar-value' }, String(count)));
  });
  return svg;
}

/** A half-circle gauge of `value` between `min` and `max`. */
function gauge(label, value, min, max, text, testid) {
  const share = value === null || value === undefined ? 0 : Math.min(1, Math.max(0, (value - min) / (max - min)));
  const radius = 60;
  const arc = (fraction) => {
    const angle = Math.PI * (1 - fraction);
    return `${70 + radius * Math.cos(angle)} ${75 - radius * Math.sin(angle)}`;
  };
  const svg = s('svg', { class: 'chart gauge', viewBox: '0 0 140 90', role: 'img',
    'aria-label': `${label}: ${text}`, 'data-testid': testid },
  s('path', { d: `M ${arc(0)} A ${radius} ${radius} 0 0 1 ${arc(1)}`, class: 'gauge-track' }),
  value === null || value === undefined ? null
    : s('path', { d: `M ${arc(0)} A ${radius} ${radius} 0 0 1 ${arc(share)}`, class: 'gauge-value' }),
  s('text', { x: 70, y: 72, class: 'gauge-text', 'text-anchor': 'middle' }, text));
  return h('figure', { class: 'gauge-figure' }, svg, h('figcaption', {}, label));
}

const percent = (rate) => (rate === null || rate === undefined ? '—' : `${Math.round(rate * 100)}%`);

function figures(insights) {
  const nps = insights.nps;
  const csat = insights.csat;
  const ces = insights.ces;
  return [
    h('section', { class: 'panel', 'aria-labelledby': 'h-channels' },
      h('h2', { id: 'h-channels' }, 'Contacts per channel'), channelBars(insights.contacts_per_channel),
      h('p', { class: 'muted' }, `${plural(insights.cases, 'case')} opened in this period`)),
    h('section', { class: 'panel', 'aria-labelledby': 'h-cases-rates' },
      h('h2', { id: 'h-cases-rates' }, 'Cases'),
      h('div', { class: 'gauges' },
        gauge('First-contact resolution', insights.first_contact_resolution_rate, 0, 1, percent(insights.first_contact_resolution_rate), 'gauge-fcr'),
        gauge('Repeat-contact rate', insights.repeat_contact_rate, 0, 1, percent(insights.repeat_contact_rate), 'gauge-repeat'),
        gauge('Channel-hop rate', insights.channel_hop_rate, 0, 1, percent(insights.channel_hop_rate), 'gauge-hop'))),
    h('section', { class: 'panel', 'aria-labelledby': 'h-surveys' },
      h('h2', { id: 'h-surveys' }, 'Customer feedback'),
      h('div', { class: 'gauges' },
        gauge(`NPS (${plural(insights.responses?.nps ?? 0, 'answer')})`, nps, -100, 100, nps === null || nps === undefined ? '—' : String(Math.round(nps)), 'gauge-nps'),
        gauge(`CSAT (${plural(insights.responses?.csat ?? 0, 'answer')})`, csat, 0, 100, csat === null || csat === undefined ? '—' : `${Math.round(csat)}%`, 'gauge-csat'),
        gauge(`CES (${plural(insights.responses?.ces ?? 0, 'answer')})`, ces, 1, 7, ces === null || ces === undefined ? '—' : ces.toFixed(1), 'gauge-ces'))),
  ];
}

/** Renders the ops view into `container`. */
export function opsView(container) {
  const until = new Date();
  const since = new Date(until.getTime() - 30 * 86400000);
  const results = h('div', { class: 'ops-grid', 'data-testid': 'ops-figures' });
  const status = h('p', { class: 'muted', role: 'status' });
  const form = h('form', { class: 'period', 'aria-label': 'Period' },
    field('Since', h('input', { type: 'date', name: 'since', value: isoDay(since), required: true })),
    field('Until', h('input', { type: 'date', name: 'until', value: isoDay(until), required: true })),
    h('button', { type: 'submit', class: 'primary' }, 'Show'),
    status);
  const load = async () => {
    const values = Object.fromEntries(new FormData(form));
    const from = new Date(`${values.since}T00:00:00`);
    const to = new Date(`${values.until}T00:00:00`);
    to.setDate(to.getDate() + 1);
    status.textContent = 'Loading…';
    try {
      const insights = await api.insights(from.toISOString(), to.toISOString());
      replace(results, ...figures(insights));
      status.textContent = `${values.since} to ${values.until}`;
    } catch (problem) {
      status.textContent = `Could not load the figures: ${explain(problem)}`;
    }
  };
  form.addEventListener('submit', (event) => { event.preventDefault(); load(); });
  replace(container,
    h('div', { class: 'ops-head' }, h('h1', {}, icon('case', 'heading-icon'), 'Contact-centre insights'), form),
    results);
  load();
}
