// The teacher dashboard: start a class, show how to join, and follow the class over
// /ws/teacher (docs/protocol.md, "Classroom"), on the same self-healing socket as the drawing
// page (socket.js).
//
// The teacher secret comes from POST /api/rooms and stays in this tab's sessionStorage; the URL
// carries only the class code in its fragment (#CODE), which browsers never send to a server,
// so a reload reconnects and nothing logged or projected contains the secret. Only the
// server's `unauthorized` drops the secret: a `rate_limited` answer is waited out.

import { TileGrid } from './classroom-tiles.js';
import { ReconnectingSocket } from './socket.js';
import { setText } from './status.js';
import { tabStorage } from './storage.js';

const STORAGE_KEY = 'digitstream.classroom';
const CONFIRM_MS = 4000;
const LOOPBACK = /^(localhost|127\.|\[::1\])/;
const STATUS_TEXT = {
  connecting: 'Connecting…',
  connected: 'Connecting…',     // the socket is open; "Live" once the class's snapshot arrives
  reconnecting: 'Reconnecting…',
  offline: 'Server unreachable, retrying',
};
const NOT_SENT = 'Not sent: the dashboard is reconnecting. Try again once it says Live.';
const GONE = 'This class no longer exists on the server: it was ended, or the server restarted '
  + '(a restart closes every class). Start a new class and give your students its new code.';

const $ = (id) => document.getElementById(id);

const grid = new TileGrid({
  container: $('tiles'),
  template: $('tile-template'),
  onRemove: (id) => send({ type: 'remove', student: id }),
  onChange: announceArrivals,
});
const promptButtons = buildPromptButtons();
let connection = null;
let keys = null;          // {room, secret}
let live = false;         // the class's snapshot arrived on the current socket
let shownPrompt;          // undefined until the first snapshot: nothing to announce yet
let waitUntil = 0;        // a rate_limited answer's retry time (ms since the epoch)
let closeTimer = null;    // disarms "End class" when no second click comes

function buildPromptButtons() {
  const buttons = new Map();
  for (const digit of [null, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = digit === null ? 'Free' : String(digit);
    button.title = digit === null ? 'No prompt: students draw any digit' : `Ask everyone to draw a ${digit}`;
    button.setAttribute('aria-pressed', 'false');
    button.addEventListener('click', () => send({ type: 'prompt', digit }));
    $('prompts').append(button);
    buttons.set(digit, button);
  }
  return buttons;
}

function saved() {
  try {
    const value = JSON.parse(tabStorage.get(STORAGE_KEY));
    return typeof value?.room === 'string' && typeof value?.secret === 'string' ? value : null;
  } catch {
    return null;
  }
}

function showStatus(state, text) {
  $('status').dataset.state = state;
  setText($('status'), text);
}

function announce(text) { setText($('announcer'), text); }

function showStart(message = '') {
  connection?.stop();
  connection = null;
  keys = null;
  tabStorage.remove(STORAGE_KEY);
  history.replaceState(null, '', location.pathname);
  $('room').hidden = true;
  $('start').hidden = false;
  $('start-message').textContent = message;
  showStatus('idle', '');
}

async function createRoom() {
  $('create').disabled = true;
  try {
    const response = await fetch('api/rooms', { method: 'POST' });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error ?? response.statusText);
    tabStorage.set(STORAGE_KEY, JSON.stringify({ room: body.room, secret: body.secret }));
    // Replaced, not pushed: Back must leave the dashboard, not show a page that forgets the class.
    history.replaceState(null, '', `#${body.room}`);
    openRoom({ room: body.room, secret: body.secret });
  } catch (error) {
    $('start-message').textContent = `Could not start a class: ${error.message}`;
  } finally {
    $('create').disabled = false;
  }
}

function openRoom(roomKeys) {
  keys = roomKeys;
  disarmClose();
  shownPrompt = undefined;
  $('start').hidden = true;
  $('room').hidden = false;
  $('code').textContent = `${keys.room.slice(0, 4)} ${keys.room.slice(4)}`;
  $('join-host').textContent = location.host;
  $('local-warning').hidden = !LOOPBACK.test(location.hostname);
  $('qr').src = `api/rooms/${encodeURIComponent(keys.room)}/qr.svg`;
  grid.layout();
  connection = new ReconnectingSocket(new URL('ws/teacher', location.href).href.replace(/^http/, 'ws'));
  connection.onOpen(() => {
    live = false;
    connection.sendJson({ type: 'auth', room: keys.room, secret: keys.secret });
  });
  connection.onMessage(onMessage);
  connection.onStatus(({ state }) => {
    if (state === 'stopped' || (state === 'connected' && live)) return;
    if (state !== 'connected') live = false;
    const waitS = Math.ceil((waitUntil - Date.now()) / 1000);
    if (waitS > 0 && state !== 'connected') {
      showStatus('reconnecting', `Too many attempts from this network; retrying in ${waitS} s`);
    } else {
      showStatus(state === 'offline' ? 'offline' : 'connecting', STATUS_TEXT[state]);
    }
  });
  connection.start();
}

/** Commands are not queued: one given while the dashboard reconnects says it went nowhere. */
function send(message) {
  setText($('command-notice'), connection?.sendJson(message) ? '' : NOT_SENT);
}

function onMessage(message) {
  switch (message.type) {
    case 'snapshot':
      live = true;
      waitUntil = 0;
      setText($('command-notice'), '');
      showStatus('connected', 'Live');
      grid.reset(message.tiles);
      showCounts(message);
      break;
    case 'tiles':
      grid.apply(message.changed, message.removed);
      showCounts(message);
      break;
    case 'closed':
      showStart(message.reason === 'expired' ? 'The class closed after a long quiet spell.' : 'The class has ended.');
      break;
    case 'error':
      if (message.code === 'unauthorized') showStart(GONE);
      else if (message.code === 'classroom_unavailable') setText($('command-notice'), message.message);
      else if (message.code === 'rate_limited') {
        // Many students behind one school address can trip the limit: keep the secret, wait.
        const seconds = Number(message.retry_after) > 0 ? Number(message.retry_after) : 60;
        waitUntil = Date.now() + seconds * 1000;
        connection.retryAfter(seconds);
      }
      break;
  }
}

function showCounts({ students, matching, prompt }) {
  grid.prompt = prompt;
  for (const [digit, button] of promptButtons) button.setAttribute('aria-pressed', String(digit === prompt));
  $('room').dataset.prompt = prompt === null ? '' : String(prompt);
  const noun = students === 1 ? 'student' : 'students';
  setText($('score-count'), String(prompt === null ? students : matching));
  setText($('score-text'), prompt === null ? `${noun} in the class` : `of ${students} ${noun} drew a ${prompt}`);
  $('empty').hidden = students > 0;
  if (shownPrompt !== undefined && prompt !== shownPrompt) {
    announce(prompt === null ? 'Prompt cleared: students draw any digit.' : `Prompt: draw a ${prompt}.`);
  }
  shownPrompt = prompt;
}

function announceArrivals({ joined, left }) {
  const say = (names, verb) => (names.length === 1 ? `${names[0]} ${verb}.` : `${names.length} students ${verb}.`);
  announce([joined.length ? say(joined, 'joined') : '', left.length ? say(left, 'left') : ''].join(' ').trim());
}

/** Two clicks to end a class: a stray click must not end a lesson. */
function confirmClose() {
  const button = $('close-room');
  if (button.dataset.confirm === 'true') {
    disarmClose();
    send({ type: 'close' });
    return;
  }
  button.dataset.confirm = 'true';
  button.textContent = 'Click again to end';
  closeTimer = setTimeout(disarmClose, CONFIRM_MS);
}

/** Armed for one class only: a click in the next class starts its own confirmation. */
function disarmClose() {
  clearTimeout(closeTimer);
  $('close-room').dataset.confirm = 'false';
  $('close-room').textContent = 'End class';
}

$('create').addEventListener('click', createRoom);
$('clear-all').addEventListener('click', () => send({ type: 'clear_all' }));
$('close-room').addEventListener('click', confirmClose);

const stored = saved();
if (stored && location.hash.slice(1) === stored.room) openRoom(stored);
else if (location.hash.length > 1) showStart('This class was started in another tab; its dashboard opens only there.');
else showStart();
