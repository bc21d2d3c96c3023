// Server-sent events over fetch(): EventSource cannot send the bearer
// token, so the stream is read from a ReadableStream and parsed here. After
// a disconnect it reconnects with backoff and resumes with Last-Event-ID,
// so nothing is missed and nothing arrives twice.

import { authHeaders } from './api.js';

const MIN_DELAY = 1000;
const MAX_DELAY = 30000;

/** Splits an SSE byte stream (decoded to text) into events. */
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.reset();
  }

  reset() {
    this.id = null;
    this.event = '';
    this.data = [];
    this.retry = null;
  }

  push(text) {
    this.buffer += text;
    let end;
    while ((end = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const newline = this.buffer.startsWith('\r\n', end) ? 2 : 1;
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + newline);
      this.line(line);
    }
  }

  line(line) {
    if (line === '') {
      if (this.data.length > 0) {
        this.onEvent({ id: this.id, event: this.event || 'message', data: this.data.join('\n') });
      }
      this.event = '';
      this.data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'data') this.data.push(value);
    else if (name === 'event') this.event = value;
    else if (name === 'id' && !value.includes('\0')) this.id = value;
    else if (name === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
  }
}

/**
 * Follows a customer's live updates until `close()`. `onEvent({event, data})`
 * gets each event with its JSON parsed; `onState('live'|'reconnecting'|'stopped', detail)`
 * tells the page how the stream is doing.
 */
export function follow(customerId, { onEvent, onState, onUnauthorized }) {
  const controller = new AbortController();
  let lastEventId = null;
  let delay = MIN_DELAY;
  let closed = false;

  const run = async () => {
    while (!closed) {
      const headers = authHeaders({ Accept: 'text/event-stream' });
      if (lastEventId !== null) headers['Last-Event-ID'] = lastEventId;
      try {
        const response = await fetch(`/v1/stream?customer=${encodeURIComponent(customerId)}`, {
          headers, signal: controller.signal, cache: 'no-store',
        });
        if (response.status === 401) {
          onState('stopped', 'signed out');
          onUnauthorized?.();
          return;
        }
        if (response.status === 403 || response.status === 404 || response.status === 400) {
          onState('stopped', `live updates unavailable (${response.status})`);
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        onState('live');
        // Connected: the next disconnect starts again from a short wait.
        delay = MIN_DELAY;
        const parser = new SseParser((message) => {
          if (message.id !== null) lastEventId = message.id;
          let data = null;
          try { data = JSON.parse(message.data); } catch { data = message.data; }
          onEvent({ event: message.event, data });
        });
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.push(value);
          if (parser.retry !== null) delay = Math.max(parser.retry, MIN_DELAY);
        }
      } catch (error) {
        if (closed || error.name === 'AbortError') return;
      }
      if (closed) return;
      onState('reconnecting');
      // Jitter, so a restarted server is not hit by every console at once.
      await new Promise((resolve) => setTimeout(resolve, delay * (0.75 + Math.random() / 2)));
      delay = Math.min(delay * 2, MAX_DELAY);
    }
  };
  run();
  return {
    close() {
      closed = true;
      controller.abort();
    },
  };
}
