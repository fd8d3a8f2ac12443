// The connection badge: state as text and colour, plus the live round-trip time.

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
    this.#text.textContent = LABELS[state] ?? state;
    const live = (state === 'connected' || state === 'fallback') && rttMs !== null;
    this.#rtt.textContent = live ? `${Math.max(1, Math.round(rttMs))} ms` : '';
    this.#rtt.title = live ? 'Round-trip time to the server' : '';
  }
}
