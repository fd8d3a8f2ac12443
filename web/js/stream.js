// The connection to the classifier: one WebSocket (/ws, see docs/protocol.md) with automatic
// reconnection, ping-based round-trip time, and a POST /api/classify fallback for browsers or
// networks without WebSockets.
//
// Events (this is an EventTarget; the on* helpers wrap addEventListener):
//   'message'     detail: every JSON message from the server, as parsed (extensions hook here)
//   'prediction'  detail: a prediction newer than any shown; HTTP answers are normalised to
//                 the same shape ({seq, empty, digit, confidence, probabilities, preview})
//   'status'      detail: {state, rttMs, retryInMs}; state is 'connecting' | 'connected' |
//                 'reconnecting' | 'offline' | 'fallback' (classifying over HTTP)
//   'open'        a socket (re)opened: the server knows nothing of this page's drawing yet
//   'servererror' detail: {code, message, seq?}

const PING_INTERVAL_MS = 2000;
const CONNECT_TIMEOUT_MS = 10000;   // a handshake that hangs (captive portal, dead route) is retried
const PONG_TIMEOUT_MS = 7000;       // a ping unanswered this long: the socket is dead (NAT, Wi-Fi)
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 5000;
const OFFLINE_AFTER_ATTEMPTS = 4;   // then say "offline" rather than "reconnecting"
const HTTP_AFTER_FAILED_OPENS = 3;  // a socket that never opens: proxies that block upgrades
const MAX_BUFFERED_BYTES = 256 * 1024;
const OPEN = 1;                     // WebSocket.OPEN, also usable where WebSocket is missing

export class PredictionStream extends EventTarget {
  #wsUrl;
  #httpUrl;
  #socket = null;
  #state = 'connecting';
  #rttMs = null;
  #attempts = 0;           // failed connection attempts since the last open
  #everOpened = false;
  #retryTimer = null;
  #pingTimer = null;
  #pingUnansweredSince = null;
  #sentSeq = 0;            // seq the server gives our latest snapshot (it counts 1, 2, 3 … per socket)
  #shownSeq = 0;           // newest prediction passed on
  #minSeq = 0;             // predictions below this describe a drawing undone or cleared since
  #sentAt = new Map();     // seq → send time, for per-snapshot latency
  #httpRequests = 0;

  constructor({ wsUrl, httpUrl }) {
    super();
    this.#wsUrl = wsUrl;
    this.#httpUrl = httpUrl;
  }

  get state() { return this.#state; }
  get rttMs() { return this.#rttMs; }
  get isOpen() { return this.#socket?.readyState === OPEN; }
  get sentSeq() { return this.#sentSeq; }
  get shownSeq() { return this.#shownSeq; }

  onMessage(listener) { return this.#on('message', listener); }
  onPrediction(listener) { return this.#on('prediction', listener); }
  onStatus(listener) { return this.#on('status', listener); }
  onOpen(listener) { return this.#on('open', listener); }
  onServerError(listener) { return this.#on('servererror', listener); }

  start() {
    if (typeof WebSocket !== 'function') {
      this.#setState('fallback');
      return;
    }
    window.addEventListener('online', () => this.#reconnectNow());
    window.addEventListener('offline', () => this.#socket?.close());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.#reconnectNow();
    });
    this.#connect();
  }

  /**
   * Sends a snapshot ({bytes, dataUrl} from snapshot.js).
   * final:   the drawing is settled (pen-up, undo, clear); only those go over HTTP.
   * barrier: answers to earlier snapshots are dropped (they show a drawing that no longer exists).
   * Returns false when nothing could be sent; the page resends its drawing on 'open'.
   */
  sendSnapshot(snapshot, { final = false, barrier = false } = {}) {
    if (this.isOpen) {
      if (this.#socket.bufferedAmount > MAX_BUFFERED_BYTES && !final) return false;
      this.#socket.send(snapshot.bytes);
      this.#sentSeq++;
      if (barrier) this.#minSeq = this.#sentSeq;
      this.#sentAt.set(this.#sentSeq, performance.now());
      return true;
    }
    if (final && this.#httpAllowed()) {
      this.#classifyOverHttp(snapshot);
      return true;
    }
    return false;
  }

  /** Sends a JSON control message; false if the socket is not open. */
  sendControl(message) {
    if (!this.isOpen) return false;
    this.#socket.send(JSON.stringify(message));
    return true;
  }

  /** Tells the server to drop a snapshot still waiting (the pad was cleared). */
  clear() { return this.sendControl({ type: 'clear' }); }

  #on(type, listener) {
    const wrapped = (e) => listener(e.detail);
    this.addEventListener(type, wrapped);
    return () => this.removeEventListener(type, wrapped);
  }

  #emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  #connect() {
    this.#retryTimer = null;
    let socket;
    try {
      socket = new WebSocket(this.#wsUrl);
    } catch {
      this.#scheduleReconnect();
      return;
    }
    socket.binaryType = 'arraybuffer';
    this.#socket = socket;
    const giveUp = setTimeout(() => socket.close(), CONNECT_TIMEOUT_MS);
    socket.addEventListener('open', () => { clearTimeout(giveUp); this.#onOpen(socket); });
    socket.addEventListener('message', (e) => this.#onMessage(socket, e));
    socket.addEventListener('close', () => { clearTimeout(giveUp); this.#onClose(socket); });
  }

  #onOpen(socket) {
    if (socket !== this.#socket) return;
    this.#attempts = 0;
    this.#everOpened = true;
    // The server numbers snapshots per connection: start counting afresh.
    this.#sentSeq = 0;
    this.#shownSeq = 0;
    this.#minSeq = 0;
    this.#sentAt.clear();
    this.#pingUnansweredSince = null;
    this.#setState('connected');
    this.#ping();
    this.#pingTimer = setInterval(() => this.#ping(), PING_INTERVAL_MS);
    this.#emit('open');
  }

  #onMessage(socket, e) {
    if (socket !== this.#socket || typeof e.data !== 'string') return;
    this.#pingUnansweredSince = null;   // any message proves the socket alive
    let message;
    try {
      message = JSON.parse(e.data);
    } catch {
      return;
    }
    this.#emit('message', message);
    if (message.type === 'pong' && typeof message.t === 'number') {
      this.#rttMs = performance.now() - message.t;
      this.#emitStatus();
    } else if (message.type === 'prediction') {
      this.#onPrediction(message);
    } else if (message.type === 'error') {
      this.#emit('servererror', message);
    }
  }

  #onPrediction(prediction) {
    const { seq } = prediction;
    if (seq <= this.#shownSeq || seq < this.#minSeq) return;
    this.#shownSeq = seq;
    const sentAt = this.#sentAt.get(seq);
    for (const old of this.#sentAt.keys()) if (old <= seq) this.#sentAt.delete(old);
    this.#emit('prediction', { ...prediction, latencyMs: sentAt === undefined ? null : performance.now() - sentAt });
  }

  #onClose(socket) {
    if (socket !== this.#socket) return;
    clearInterval(this.#pingTimer);
    this.#socket = null;
    this.#scheduleReconnect();
  }

  #ping() {
    if (!this.isOpen) return;
    // Judged by an unanswered ping, not by silence: background tabs run this timer only once
    // a minute, and a quiet but healthy socket must not be dropped for it.
    if (this.#pingUnansweredSince !== null) {
      if (performance.now() - this.#pingUnansweredSince > PONG_TIMEOUT_MS) this.#socket.close();
      return;   // 'close' follows and reconnects
    }
    this.#pingUnansweredSince = performance.now();
    this.sendControl({ type: 'ping', t: this.#pingUnansweredSince });
  }

  #scheduleReconnect() {
    this.#attempts++;
    // Exponential backoff with jitter, so a restarted server is not hit by every page at once.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (this.#attempts - 1));
    const delay = ceiling / 2 + Math.random() * ceiling / 2;
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
    if (this.#state === 'fallback') return;   // HTTP works; keep trying the socket quietly
    const offline = navigator.onLine === false || this.#attempts > OFFLINE_AFTER_ATTEMPTS;
    this.#setState(offline ? 'offline' : 'reconnecting', delay);
  }

  #reconnectNow() {
    if (this.#retryTimer === null) return;   // connected or connecting already
    clearTimeout(this.#retryTimer);
    this.#connect();
  }

  #httpAllowed() {
    return typeof WebSocket !== 'function' || (!this.#everOpened && this.#attempts >= HTTP_AFTER_FAILED_OPENS);
  }

  async #classifyOverHttp(snapshot) {
    const request = ++this.#httpRequests;
    this.#sentSeq = request;
    const started = performance.now();
    let response, body;
    try {
      response = await fetch(this.#httpUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image: snapshot.dataUrl }),
      });
      body = await response.json();
    } catch {
      if (!this.isOpen) this.#setState('offline');
      return;
    }
    // A socket opened meanwhile: the page resends over it, and its seq numbers rule.
    if (this.isOpen || request <= this.#shownSeq) return;
    if (!response.ok) {
      this.#emit('servererror', { code: `http_${response.status}`, message: body?.error ?? response.statusText });
      return;
    }
    this.#shownSeq = request;
    this.#rttMs = performance.now() - started;
    this.#setState('fallback');
    const digit = body.empty ? null : body.predicted_digit;
    this.#emit('prediction', {
      type: 'prediction', seq: request, empty: Boolean(body.empty), digit,
      confidence: digit === null ? 0 : body.probabilities[digit],
      probabilities: body.probabilities, preview: body.preview ?? null, latencyMs: this.#rttMs, via: 'http',
    });
  }

  #setState(state, retryInMs = null) {
    this.#state = state;
    this.#emitStatus(retryInMs);
  }

  #emitStatus(retryInMs = null) {
    this.#emit('status', { state: this.#state, rttMs: this.#rttMs, retryInMs });
  }
}
