// The teacher dashboard: create a room, show how to join, and follow the class over
// /ws/teacher (docs/protocol.md, "Classroom").
//
// The teacher secret comes from POST /api/rooms and stays in this tab's sessionStorage; the URL
// carries only the room code in its fragment (#CODE), which browsers never send to a server,
// so a reload reconnects and nothing logged or projected contains the secret.

import { TileGrid } from './classroom-tiles.js';

const STORAGE_KEY = 'digitstream.classroom';
const BACKOFF_MS = [250, 500, 1000, 2000, 5000];
const CONFIRM_MS = 4000;
const LOOPBACK = /^(localhost|127\.|\[::1\])/;

const $ = (id) => document.getElementById(id);

const grid = new TileGrid({
  container: $('tiles'),
  template: $('tile-template'),
  onRemove: (id) => send({ type: 'remove', student: id }),
});
const promptButtons = buildPromptButtons();
let socket = null;
let attempts = 0;
let room = null;        // {room, secret}

function buildPromptButtons() {
  const buttons = new Map();
  for (const digit of [null, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = digit === null ? 'Free' : String(digit);
    button.title = digit === null ? 'No prompt: students draw anything' : `Ask everyone to draw a ${digit}`;
    button.setAttribute('aria-pressed', 'false');
    button.addEventListener('click', () => send({ type: 'prompt', digit }));
    $('prompts').append(button);
    buttons.set(digit, button);
  }
  return buttons;
}

function saved() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY));
  } catch {
    return null;
  }
}

function showStatus(state, text) {
  $('status').dataset.state = state;
  $('status').textContent = text;
}

function showStart(message = '') {
  room = null;
  sessionStorage.removeItem(STORAGE_KEY);
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
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ?? response.statusText);
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ room: body.room, secret: body.secret }));
    location.hash = body.room;
    openRoom({ room: body.room, secret: body.secret });
  } catch (error) {
    $('start-message').textContent = `Could not create a room: ${error.message}`;
  } finally {
    $('create').disabled = false;
  }
}

function openRoom(keys) {
  room = keys;
  $('start').hidden = true;
  $('room').hidden = false;
  $('code').textContent = `${keys.room.slice(0, 4)} ${keys.room.slice(4)}`;
  $('join-host').textContent = location.host;
  $('local-warning').hidden = !LOOPBACK.test(location.hostname);
  $('qr').src = `api/rooms/${encodeURIComponent(keys.room)}/qr.svg`;
  connect();
}

function connect() {
  const url = new URL('ws/teacher', location.href).href.replace(/^http/, 'ws');
  socket = new WebSocket(url);
  const current = socket;
  showStatus('connecting', 'Connecting…');
  socket.addEventListener('open', () => {
    current.send(JSON.stringify({ type: 'auth', room: room.room, secret: room.secret }));
  });
  socket.addEventListener('message', (e) => onMessage(JSON.parse(e.data)));
  socket.addEventListener('close', () => {
    if (current !== socket || room === null) return;
    const delay = BACKOFF_MS[Math.min(attempts++, BACKOFF_MS.length - 1)];
    showStatus('reconnecting', 'Reconnecting…');
    setTimeout(() => { if (room !== null) connect(); }, delay);
  });
}

function send(message) {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function onMessage(message) {
  switch (message.type) {
    case 'snapshot':
      attempts = 0;
      showStatus('connected', 'Live');
      grid.reset(message.tiles);
      showCounts(message);
      break;
    case 'tiles':
      grid.apply(message.changed, message.removed);
      showCounts(message);
      break;
    case 'closed':
      showStart(message.reason === 'expired' ? 'The room closed after a long quiet spell.' : 'The room is closed.');
      break;
    case 'error':
      if (message.code === 'unauthorized' || message.code === 'rate_limited') {
        showStart('This tab cannot open that room any more; create a new one.');
      }
      break;
  }
}

function showCounts({ students, matching, prompt }) {
  grid.prompt = prompt;
  for (const [digit, button] of promptButtons) button.setAttribute('aria-pressed', String(digit === prompt));
  $('room').dataset.prompt = prompt === null ? '' : String(prompt);
  $('students').textContent = String(students);
  $('matching').textContent = String(matching);
  $('score-label').textContent = prompt === null ? (students === 1 ? 'student' : 'students') : `drew a ${prompt}`;
  $('empty').hidden = students > 0;
}

/** Two clicks to close a room: a stray click must not end a lesson. */
function confirmClose() {
  const button = $('close-room');
  if (button.dataset.confirm === 'true') {
    send({ type: 'close' });
    return;
  }
  button.dataset.confirm = 'true';
  button.textContent = 'Click again to close';
  setTimeout(() => {
    button.dataset.confirm = 'false';
    button.textContent = 'Close room';
  }, CONFIRM_MS);
}

$('create').addEventListener('click', createRoom);
$('clear-all').addEventListener('click', () => send({ type: 'clear_all' }));
$('close-room').addEventListener('click', confirmClose);

const keys = saved();
if (keys && location.hash.slice(1) === keys.room) openRoom(keys);
else if (location.hash.length > 1) showStart('This room was created in another tab; its dashboard opens only there.');
else showStart();
