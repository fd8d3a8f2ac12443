// The connection to the classifier: one WebSocket (/ws, see docs/protocol.md) kept open by
// socket.js, and a POST /api/classify fallback for browsers or networks without WebSockets.
//
// Events (a DetailEvents target, events.js; the on* helpers wrap on()):
//   'message'     detail: every JSON message from the server, as parsed (extensions hook here)
//   'prediction'  detail: a prediction newer than any shown; HTTP answers are normalised to
//                 the same shape ({seq, empty, digit, confidence, probabilities, preview})
//   'status'      detail: {state, rttMs, retryInMs}; state is 'connecting' | 'connected' |
//                 'reconnecting' | 'offline' | 'fallback' (classifying over HTTP)
//   'open'        a socket (re)opened: the server knows nothing of this page's drawing yet
//   'servererror' detail: {code, message, seq?}

import { DetailEvents } from './events.js';
import { ReconnectingSocket } from './socket.js';
import { SnapshotQueue } from './snapshot-queue.js';

const HTTP_AFTER_FAILED_OPENS = 3;  // a socket that never opens: proxies that block upgrades
const MAX_BUFFERED_BYTES = 256 * 1024;

export class PredictionStream extends DetailEvents {
  #socket;
  #queue = new SnapshotQueue((frame, options) => this.#send(frame, options));
  #httpUrl;
  #fallback = false;       // classifying over HTTP
  #sentSeq = 0;            // seq the server gives our latest snapshot (it counts 1, 2, 3 … per socket)
  #shownSeq = 0;           // newest prediction passed on
  #minSeq = 0;             // predictions below this describe a drawing undone or cleared since
  #sentAt = new Map();     // seq → send time, for per-snapshot latency
  #httpRequests = 0;
  #httpRttMs = null;

  constructor({ wsUrl, httpUrl }) {
    super();
    this.#socket = new ReconnectingSocket(wsUrl);
    this.#httpUrl = httpUrl;
    this.#socket.onOpen(() => this.#onOpen());
    this.#socket.onMessage((message) => this.#onMessage(message));
    this.#socket.onStatus(() => this.#emitStatus());
  }

  get state() { return this.#fallback && !this.isOpen ? 'fallback' : this.#socket.state; }
  get rttMs() { return this.state === 'fallback' ? this.#httpRttMs : this.#socket.rttMs; }
  get isOpen() { return this.#socket.isOpen; }
  get sentSeq() { return this.#sentSeq; }
  get shownSeq() { return this.#shownSeq; }
  /** True while a snapshot given to sendSnapshot is still being encoded or waiting. */
  get sending() { return this.#queue.busy; }

  onMessage(listener) { return this.on('message', listener); }
  onPrediction(listener) { return this.on('prediction', listener); }
  onStatus(listener) { return this.on('status', listener); }
  onOpen(listener) { return this.on('open', listener); }
  onServerError(listener) { return this.on('servererror', listener); }

  start() {
    if (typeof WebSocket !== 'function') {
      this.#fallback = true;
      this.#emitStatus();
      return;
    }
    this.#socket.start();
  }

  /**
   * Sends a snapshot (from snapshot.js) once it is encoded, after every snapshot given before it.
   * final:   the drawing is settled (pen-up, undo, clear); never dropped, and only those go over HTTP.
   * barrier: answers to earlier snapshots are dropped (they show a drawing that no longer exists).
   * Resolves to false when it was not sent (replaced by a newer one, or nowhere to send it);
   * the page resends its drawing on 'open'.
   */
  sendSnapshot(snapshot, options = {}) {
    return this.#queue.push(snapshot, options);
  }

  #send(frame, { final = false, barrier = false }) {
    if (this.isOpen) {
      if (this.#socket.socket.bufferedAmount > MAX_BUFFERED_BYTES && !final) return false;
      this.#socket.socket.send(frame.bytes);
      this.#sentSeq++;
      if (barrier) this.#minSeq = this.#sentSeq;
      this.#sentAt.set(this.#sentSeq, performance.now());
      return true;
    }
    if (final && this.#httpAllowed()) {
      this.#classifyOverHttp(frame);
      return true;
    }
    return false;
  }

  /** Sends a JSON control message; false if the socket is not open. */
  sendControl(message) { return this.#socket.sendJson(message); }

  /** Tells the server to drop a snapshot still waiting (the pad was cleared). */
  clear() { return this.sendControl({ type: 'clear' }); }

  #onOpen() {
    // The server numbers snapshots per connection: start counting afresh.
    this.#sentSeq = 0;
    this.#shownSeq = 0;
    this.#minSeq = 0;
    this.#sentAt.clear();
    this.emit('open');
  }

  #onMessage(message) {
    this.emit('message', message);
    if (message.type === 'prediction') this.#onPrediction(message);
    else if (message.type === 'error') this.emit('servererror', message);
  }

  #onPrediction(prediction) {
    const { seq } = prediction;
    if (seq <= this.#shownSeq || seq < this.#minSeq) return;
    this.#shownSeq = seq;
    const sentAt = this.#sentAt.get(seq);
    for (const old of this.#sentAt.keys()) if (old <= seq) this.#sentAt.delete(old);
    this.emit('prediction', { ...prediction, latencyMs: sentAt === undefined ? null : performance.now() - sentAt });
  }

  #httpAllowed() {
    return typeof WebSocket !== 'function'
      || (!this.#socket.everOpened && this.#socket.attempts >= HTTP_AFTER_FAILED_OPENS);
  }

  async #classifyOverHttp(frame) {
    const request = ++this.#httpRequests;
    this.#sentSeq = request;
    const started = performance.now();
    let response, body;
    try {
      response = await fetch(this.#httpUrl, {
        method: 'POST',
        headers: { 'content-type': frame.contentType },
        body: frame.bytes,
      });
      body = await response.json();
    } catch {
      if (!this.isOpen) {
        this.#fallback = false;
        this.#emitStatus();
      }
      return;
    }
    // A socket opened meanwhile: the page resends over it, and its seq numbers rule.
    if (this.isOpen || request <= this.#shownSeq) return;
    if (!response.ok) {
      // The error's code and seq, as the socket gives them: the page retries 'overloaded' alike.
      const code = body?.code ?? `http_${response.status}`;
      this.emit('servererror', { code, message: body?.error ?? response.statusText, seq: request });
      return;
    }
    this.#shownSeq = request;
    this.#httpRttMs = performance.now() - started;
    this.#fallback = true;
    this.#emitStatus();
    const digit = body.empty ? null : body.predicted_digit;
    this.emit('prediction', {
      type: 'prediction', seq: request, empty: Boolean(body.empty), digit,
      confidence: digit === null ? 0 : body.probabilities[digit],
      probabilities: body.probabilities, preview: body.preview ?? null, latencyMs: this.#httpRttMs, via: 'http',
    });
  }

  #emitStatus() {
    this.emit('status', { state: this.state, rttMs: this.rttMs, retryInMs: null });
  }
}
