// The connection badge: state as text and colour, plus the live round-trip time. It is not a
// live region (the round trip changes every two seconds); losing the server is announced once
// by the pad's connection notice instead.

const LABELS = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Offline, retrying',
  fallback: 'Connected (HTTP)',
};

export class StatusView {
  #element;
  #text;
  #rtt;

  constructor({ element, text, rtt }) {
    this.#element = element;
    this.#text = text;
    this.#rtt = rtt;
  }

  show({ state, rttMs }) {
    this.#element.dataset.state = state;
    setText(this.#text, LABELS[state] ?? state);
    const live = (state === 'connected' || state === 'fallback') && rttMs !== null;
    setText(this.#rtt, live ? `${Math.max(1, Math.round(rttMs))} ms` : '');
    this.#rtt.title = live ? 'Round-trip time to the server' : '';
  }
}

/** Writes only a changed text, so nothing is re-announced or re-laid out for nothing. */
export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}
