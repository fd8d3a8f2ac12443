// Wires the pad, the stream and the views together, plus keyboard shortcuts and a read-only
// debug hook (window.digitstream) that tests use to observe the stream without timers.

import { DrawingPad } from './pad.js';
import { renderSnapshot } from './snapshot.js';
import { PredictionStream } from './stream.js';
import { Throttle } from './throttle.js';
import { ConfidenceBars } from './bars.js';
import { PredictionView } from './prediction.js';
import { StatusView, setText } from './status.js';
import { attachClassroom } from './room.js';

/** While drawing, at most one snapshot per this many ms: ~25 predictions/s feels live. */
const LIVE_INTERVAL_MS = 40;
const RETRY_MS = 300;
// A busy or slow server left this snapshot unanswered; nothing was wrong with it.
const RETRIED_ERRORS = new Set(['overloaded', 'model_timeout']);
const LOST_STATES = new Set(['reconnecting', 'offline']);
const LOST_NOTICE = {
  answered: 'The server cannot be reached: the answer is out of date. Your drawing is kept.',
  blank: 'The server cannot be reached. Draw anyway: your drawing is read once it is back.',
};

const $ = (id) => document.getElementById(id);

const pad = new DrawingPad($('pad'));
const bars = new ConfidenceBars($('bars'));
const prediction = new PredictionView({
  region: $('prediction'), digit: $('prediction-digit'), label: $('prediction-label'),
  confidence: $('prediction-confidence'), preview: $('preview'), spoken: $('prediction-spoken'),
});
const status = new StatusView({ element: $('status'), text: $('status-text'), rtt: $('status-rtt') });
const stream = new PredictionStream({
  wsUrl: new URL('ws', location.href).href.replace(/^http/, 'ws'),
  httpUrl: new URL('api/classify', location.href).href,
});

const stats = {
  snapshotsSent: 0, predictionsReceived: 0, predictionsThisStroke: 0,
  predictionsDuringStrokes: 0, resends: 0, connections: 0, lastLatencyMs: null,
  penUpToSendMs: null, lastPrediction: null,
};
let sentVersion = -1;

/**
 * Sends the drawing unless that exact version went out already (or `force`). The pixels are
 * taken now; the frame goes out once encoded. Resolves to whether it went out.
 */
async function sendDrawing({ final = false, barrier = false, force = false } = {}) {
  if (!force && pad.version === sentVersion) return false;
  const version = pad.version;
  const sent = await stream.sendSnapshot(renderSnapshot(pad.strokes, pad.penWidth), { final, barrier });
  if (sent) {
    sentVersion = version;
    stats.snapshotsSent++;
  }
  return sent;
}

const liveSender = new Throttle(LIVE_INTERVAL_MS, () => sendDrawing());

pad.addEventListener('strokestart', () => {
  stats.predictionsThisStroke = 0;
  prediction.busy = true;
});

pad.addEventListener('change', (e) => {
  const { reason } = e.detail;
  // aria-disabled, not disabled: a disabled button drops keyboard focus to <body>.
  $('undo').setAttribute('aria-disabled', String(pad.isEmpty));
  $('clear').setAttribute('aria-disabled', String(pad.isEmpty));
  if (reason === 'draw') {
    liveSender.request();
    return;
  }
  liveSender.cancel();
  prediction.busy = false;
  if (reason === 'clear') {
    // Show the blank state at once; the blank snapshot's answer confirms it and, as a
    // barrier, keeps any late answer about the old drawing off the screen.
    stream.clear();
    showBlank();
  }
  const startedAt = performance.now();
  const sending = sendDrawing({ final: true, barrier: reason !== 'strokeend' });
  if (reason === 'strokeend') sending.then(() => { stats.penUpToSendMs = performance.now() - startedAt; });
});

stream.onPrediction((answer) => {
  stats.predictionsReceived++;
  if (pad.isDrawing) {
    stats.predictionsThisStroke++;
    stats.predictionsDuringStrokes++;
  }
  stats.lastLatencyMs = answer.latencyMs;
  stats.lastPrediction = answer;
  if (answer.empty || pad.isEmpty) showBlank();
  else {
    bars.show(answer.probabilities);
    prediction.show(answer, { settled: !pad.isDrawing && !stream.sending && answer.seq === stream.sentSeq });
  }
});

stream.onOpen(() => {
  stats.connections++;
  // A new connection (first, or after a server restart) knows nothing of the drawing.
  if (!pad.isEmpty) {
    stats.resends++;
    sendDrawing({ final: !pad.isDrawing, barrier: true, force: true });
  }
});

stream.onServerError((error) => {
  // Unanswered, the newest drawing must go again, or the bars would settle on an older one.
  if (RETRIED_ERRORS.has(error.code) && (error.seq === undefined || error.seq === stream.sentSeq)) {
    setTimeout(() => sendDrawing({ final: !pad.isDrawing, force: true }), RETRY_MS);
  }
});

stream.onStatus((s) => {
  status.show(s);
  // The last answer stays (dimmed) beside the drawing; the notice says why it is stale.
  const lost = LOST_STATES.has(s.state);
  document.body.dataset.connection = lost ? 'lost' : 'ok';
  setText($('connection-notice'), lost ? LOST_NOTICE[pad.isEmpty ? 'blank' : 'answered'] : '');
  // A drawing finished while nothing could carry it goes out once HTTP may (sendDrawing skips
  // a version already sent, and resolves false while there is still nowhere to send it).
  if (lost && !pad.isEmpty && !pad.isDrawing) sendDrawing({ final: true });
});

function showBlank() {
  bars.reset();
  prediction.reset();
}

$('undo').addEventListener('click', () => pad.undo());
$('clear').addEventListener('click', () => { if (!pad.isEmpty) pad.clear(); });

document.addEventListener('keydown', (e) => {
  // Esc in a dialog closes the dialog; it must not also wipe the drawing behind it.
  if (e.defaultPrevented || e.target.closest?.('input, textarea, select, [contenteditable], dialog')) return;
  if (e.key === 'Escape') {
    pad.clear();
  } else if ((e.ctrlKey || e.metaKey) && !e.shiftKey && !e.altKey && e.key.toLowerCase() === 'z') {
    e.preventDefault();
    pad.undo();
  }
});

Object.defineProperty(window, 'digitstream', {
  value: Object.freeze({
    get state() { return stream.state; },
    get rttMs() { return stream.rttMs; },
    get lastSeq() { return stream.shownSeq; },
    get sentSeq() { return stream.sentSeq; },
    /** True once the newest snapshot's answer is shown and no stroke is in progress. */
    get settled() {
      return !pad.isDrawing && !stream.sending && stream.shownSeq === stream.sentSeq && stream.sentSeq > 0;
    },
    /** True while a snapshot is being encoded or waits for one that is. */
    get sending() { return stream.sending; },
    get isDrawing() { return pad.isDrawing; },
    get strokeCount() { return pad.strokeCount; },
    get stats() { return { ...stats }; },
  }),
});

// Started first: whatever goes wrong in classroom mode, the pad still gets its answers. The
// room's 'open' listener is still in time, as a socket opens in a later task.
stream.start();
attachClassroom({ stream, pad, sendBlank: () => sendDrawing({ final: true, barrier: true, force: true }) });
