// A WebSocket that stays connected: reconnects with backoff and jitter, detects dead sockets by
// unanswered pings, and parses every text frame as JSON (a frame that is not JSON is dropped,
// never thrown). The drawing page's stream and the teacher's dashboard both ride on it.
//
// Events (a DetailEvents target, events.js; the on* helpers wrap on()):
//   'open'     a socket (re)opened; listeners run before the first ping is sent, so a protocol
//              whose first message must be something else (the teacher's auth) can send it
//   'message'  detail: a JSON text frame from the server, parsed
//   'status'   detail: {state, rttMs, retryInMs}; state is 'connecting' | 'connected' |
//              'reconnecting' | 'offline' | 'stopped'

import { DetailEvents } from './events.js';

const PING_INTERVAL_MS = 2000;
const CONNECT_TIMEOUT_MS = 10000;   // a handshake that hangs (captive portal, dead route) is retried
const PONG_TIMEOUT_MS = 7000;       // a ping unanswered this long: the socket is dead (NAT, Wi-Fi)
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 5000;
const OFFLINE_AFTER_ATTEMPTS = 4;   // then say "offline" rather than "reconnecting"
const OPEN = 1;                     // WebSocket.OPEN, also usable where WebSocket is missing

export class ReconnectingSocket extends DetailEvents {
  #url;
  #socket = null;
  #state = 'connecting';
  #rttMs = null;
  #attempts = 0;           // connections that failed or ended since one was last answered
  #everOpened = false;
  #retryTimer = null;
  #pingTimer = null;
  #pingUnansweredSince = null;
  #nextDelayMs = null;     // set by retryAfter(): the server said when to come back
  #stopped = false;

  constructor(url) {
    super();
    this.#url = url;
  }

  get state() { return this.#state; }
  get rttMs() { return this.#rttMs; }
  get isOpen() { return this.#socket?.readyState === OPEN; }
  get attempts() { return this.#attempts; }
  get everOpened() { return this.#everOpened; }
  /** The socket in use, for sends that need its buffer level. */
  get socket() { return this.#socket; }

  onOpen(listener) { return this.on('open', listener); }
  onMessage(listener) { return this.on('message', listener); }
  onStatus(listener) { return this.on('status', listener); }

  start() {
    window.addEventListener('online', () => this.reconnectNow());
    window.addEventListener('offline', () => this.#abandon());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.reconnectNow();
    });
    this.#connect();
  }

  /** Sends a JSON message; false if the socket is not open. */
  sendJson(message) {
    if (!this.isOpen) return false;
    this.#socket.send(JSON.stringify(message));
    return true;
  }

  /** Closes the current socket and reconnects after `seconds` (a server's retry_after). */
  retryAfter(seconds) {
    this.#nextDelayMs = Math.max(0, Number(seconds) || 0) * 1000;
    this.#socket?.close();
  }

  /** Closes for good: no reconnects (the server said this client may not come back). */
  stop() {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#socket?.close();
    this.#setState('stopped');
  }

  reconnectNow() {
    if (this.#retryTimer === null || this.#nextDelayMs !== null) return;   // busy, or told to wait
    clearTimeout(this.#retryTimer);
    this.#connect();
  }

  #connect() {
    this.#retryTimer = null;
    this.#nextDelayMs = null;
    let socket;
    try {
      socket = new WebSocket(this.#url);
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
    this.#everOpened = true;
    this.#pingUnansweredSince = null;
    this.#setState('connected');
    this.emit('open');
    this.#ping();
    this.#pingTimer = setInterval(() => this.#ping(), PING_INTERVAL_MS);
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
    if (message === null || typeof message !== 'object') return;
    if (message.type === 'pong' && typeof message.t === 'number') {
      // Backoff restarts only once the server answers: a server that accepts and then refuses
      // (full, shutting down) must not be retried at the first step's pace forever.
      this.#attempts = 0;
      this.#rttMs = performance.now() - message.t;
      this.#emitStatus();
    }
    this.emit('message', message);
  }

  #onClose(socket) {
    if (socket !== this.#socket) return;
    clearInterval(this.#pingTimer);
    this.#socket = null;
    if (!this.#stopped) this.#scheduleReconnect();
  }

  #ping() {
    if (!this.isOpen) return;
    // Judged by an unanswered ping, not by silence: background tabs run this timer only once
    // a minute, and a quiet but healthy socket must not be dropped for it.
    if (this.#pingUnansweredSince !== null) {
      if (performance.now() - this.#pingUnansweredSince > PONG_TIMEOUT_MS) this.#abandon();
      return;
    }
    this.#pingUnansweredSince = performance.now();
    this.sendJson({ type: 'ping', t: this.#pingUnansweredSince });
  }

  /** Gives up on the socket now: on a dead network path its close handshake would hold the
   *  'close' event back for up to a minute, with the page claiming to be connected. */
  #abandon() {
    const socket = this.#socket;
    if (socket === null) return;
    socket.close();
    this.#onClose(socket);
  }

  #scheduleReconnect() {
    this.#attempts++;
    let delay = this.#nextDelayMs;
    if (delay === null) {
      // Exponential backoff with jitter, so a restarted server is not hit by every page at once.
      const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (this.#attempts - 1));
      delay = ceiling / 2 + Math.random() * ceiling / 2;
    }
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
    const offline = navigator.onLine === false || this.#attempts > OFFLINE_AFTER_ATTEMPTS;
    this.#setState(offline ? 'offline' : 'reconnecting', delay);
  }

  #setState(state, retryInMs = null) {
    this.#state = state;
    this.#emitStatus(retryInMs);
  }

  #emitStatus(retryInMs = null) {
    this.emit('status', { state: this.#state, rttMs: this.#rttMs, retryInMs });
  }
}
