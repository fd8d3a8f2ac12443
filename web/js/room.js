// Classroom mode on the drawing page: join a teacher's class with its code and a display name
// (or arrive by a join link, /?room=CODE), show the teacher's prompt, and obey "clear pad",
// "removed" and "class closed" (docs/protocol.md, "Classroom"). Joining rides on the page's own
// /ws stream as a control message, so its reconnects rejoin (with the seat's rejoin token, so
// the tile keeps its place) and the drawing is classified exactly as in single-user mode.
// All user text reaches the page through textContent.

import { siteStorage, tabStorage } from './storage.js';

const MEMBERSHIP_KEY = 'digitstream.room';   // sessionStorage {room, name, asked, rejoin}: a reload rejoins
const NAME_KEY = 'digitstream.name';         // localStorage: the name is offered again next time
const MAX_NAME_LENGTH = 32;
const JOIN_ERRORS = new Set(['room_not_found', 'room_full', 'bad_name', 'rate_limited', 'classroom_unavailable']);
/** Refusals an automatic rejoin waits out (seconds, where the server names no retry_after). */
const RETRY_DEFAULT_S = { rate_limited: 60, classroom_unavailable: 3 };
const WAITING_TO_JOIN = 'Not connected yet: you join as soon as the connection is back.';
const GOODBYES = {
  removed: 'The teacher removed you from the class. You can keep drawing on your own.',
  closed: 'The class has ended. You can keep drawing on your own.',
  expired: 'The class closed after a quiet spell. You can keep drawing on your own.',
};
/** An automatic rejoin that finds no class: the embedded server forgets classes when it restarts. */
const CLASS_LOST = 'The class was closed when the server restarted: ask your teacher for the new code, '
  + 'then tap “Join a class”. Your drawing is kept.';

/** Builds an element: el('p', {className: 'x', hidden: true}, child, 'text', …). */
function el(tag, props = {}, ...children) {
  const element = Object.assign(document.createElement(tag), props);
  element.append(...children);
  return element;
}

/** "4KFBA6M7" or "4kfb-a6m7" → "4KFB A6M7", as the projector shows it. */
function formatCode(text) {
  const code = text.replace(/[\s-]/g, '').toUpperCase();
  return code.length === 8 ? `${code.slice(0, 4)} ${code.slice(4)}` : text;
}

class JoinDialog {
  constructor(onSubmit, onCancel) {
    this.code = el('input', {
      id: 'join-code', name: 'code', required: true, maxLength: 12, autocomplete: 'off',
      spellcheck: false, autocapitalize: 'characters', placeholder: 'ABCD EFGH',
    });
    this.name = el('input', {
      id: 'join-name', name: 'name', required: true, maxLength: MAX_NAME_LENGTH, autocomplete: 'nickname',
      value: siteStorage.get(NAME_KEY) ?? '',
    });
    this.error = el('p', { id: 'join-error', className: 'join-error', role: 'alert' });
    const cancel = el('button', { type: 'button', textContent: 'Cancel' });
    cancel.addEventListener('click', () => { this.element.close(); onCancel(); });
    const form = el('form', { className: 'join-form' },
      el('h2', { id: 'join-title', textContent: 'Join a class' }),
      el('label', { htmlFor: 'join-code', textContent: 'Class code' }), this.code,
      el('label', { htmlFor: 'join-name', textContent: 'Your name' }), this.name,
      this.error,
      el('div', { className: 'join-buttons' }, cancel, el('button', { type: 'submit', className: 'primary', textContent: 'Join' })));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      siteStorage.set(NAME_KEY, this.name.value.trim());
      onSubmit(this.code.value, this.name.value);
    });
    this.element = el('dialog', { id: 'join-dialog', className: 'join-dialog' }, form);
    this.element.setAttribute('aria-labelledby', 'join-title');
    this.element.addEventListener('cancel', onCancel);   // Escape
  }

  open({ code = this.code.value, error = '' } = {}) {
    this.code.value = code ? formatCode(code) : '';
    this.error.textContent = error;
    if (!this.element.open) this.element.showModal();
    (code ? this.name : this.code).focus();
  }

  say(error) { this.error.textContent = error; }

  close() { if (this.element.open) this.element.close(); }
}

class RoomBanner {
  #promptText = null;

  constructor(onLeave) {
    this.code = el('strong', { id: 'room-code' });
    this.name = el('span', { id: 'room-name' });
    // A live region written only when the prompt changes: a screen reader hears it once.
    this.prompt = el('p', { id: 'room-prompt', className: 'room-prompt' });
    this.prompt.setAttribute('aria-live', 'polite');
    this.notice = el('p', { id: 'room-notice', className: 'room-notice', role: 'status' });
    this.leave = el('button', { id: 'room-leave', type: 'button', textContent: 'Leave' });
    this.leave.addEventListener('click', onLeave);
    this.bar = el('div', { id: 'room-banner', className: 'room-banner', hidden: true },
      this.prompt, el('p', { className: 'room-where' }, 'Class ', this.code, ' · ', this.name), this.leave);
    this.element = el('section', { className: 'room-strip', ariaLabel: 'Class' }, this.bar, this.notice);
  }

  show({ room, name }) {
    this.code.textContent = formatCode(room);
    this.name.textContent = name;
    this.notice.textContent = '';
    this.bar.hidden = false;
  }

  showPrompt(prompt, digit) {
    const text = prompt === null ? 'Draw any digit' : `Draw a ${prompt}`;
    if (text !== this.#promptText) this.prompt.textContent = text;
    this.#promptText = text;
    this.prompt.dataset.free = String(prompt === null);
    this.prompt.dataset.match = String(prompt !== null && digit === prompt);
  }

  say(text) {
    this.bar.hidden = true;
    this.#promptText = null;
    this.notice.textContent = text;
  }
}

export function attachClassroom({ stream, pad, sendBlank }) {
  document.head.append(el('link', { rel: 'stylesheet', href: 'room.css' }));
  let membership = null;     // {room, name, asked, rejoin, joined, automatic}
  let prompt = null;
  let digit = null;
  let retryTimer = null;

  const dialog = new JoinDialog(
    (code, name) => join({ room: code, asked: name, name: null, rejoin: null, automatic: false }),
    // A join still waiting for the connection, or for its answer, is called off.
    () => { if (membership && !membership.joined && !membership.automatic) leave(''); },
  );
  const banner = new RoomBanner(() => leave(''));
  const opener = el('button', { id: 'join-class', type: 'button', className: 'join-class', textContent: 'Join a class' });
  opener.addEventListener('click', () => dialog.open());
  document.querySelector('.topbar').append(opener);
  document.querySelector('.topbar').after(banner.element);
  document.body.append(dialog.element);
  // The strip's height is taken from the pad's, so pad, prompt and bars share one screen.
  new ResizeObserver(() => {
    document.documentElement.style.setProperty('--strip-height', `${banner.element.offsetHeight}px`);
  }).observe(banner.element);

  function join(next) {
    clearTimeout(retryTimer);
    membership = { ...membership, ...next, joined: false };
    const message = { type: 'join', room: membership.room, name: membership.asked };
    if (membership.rejoin) message.rejoin = membership.rejoin;
    // Unsent, it goes out from onOpen below, still counted as the student's own join.
    if (!stream.sendControl(message) && !membership.automatic) dialog.say(WAITING_TO_JOIN);
  }

  function leave(goodbye) {
    clearTimeout(retryTimer);
    // Also while a join is on its way: the server handles the two in order.
    if (membership && !goodbye) stream.sendControl({ type: 'leave' });
    membership = null;
    prompt = null;
    tabStorage.remove(MEMBERSHIP_KEY);
    const leaving = banner.bar.contains(document.activeElement);
    opener.hidden = false;
    banner.say(goodbye);
    if (leaving) opener.focus();   // the focused Leave button is hidden now
  }

  function refused({ code, message, retry_after: retryAfter }) {
    // An automatic rejoin (reconnect, reload) explains itself beside the drawing; only a join
    // the student just asked for reopens the dialog.
    if (membership.automatic && code in RETRY_DEFAULT_S) {
      const delayS = Math.max(1, Number(retryAfter) || RETRY_DEFAULT_S[code]);
      retryTimer = setTimeout(() => join({}), delayS * 1000);
      return;
    }
    const room = membership.room;
    const automatic = membership.automatic;
    leave(automatic ? (code === 'room_not_found' ? CLASS_LOST : message) : '');
    if (!automatic) dialog.open({ code: room, error: message });
  }

  stream.onOpen(() => { if (membership) join({}); });

  stream.onPrediction((answer) => {
    digit = answer.empty ? null : answer.digit;
    if (membership?.joined) banner.showPrompt(prompt, digit);
  });

  stream.onMessage((message) => {
    switch (message.type) {
      case 'joined':
        if (!membership) {   // left, or called off, while this join was on its way
          stream.sendControl({ type: 'leave' });
          break;
        }
        // A seat taken back (reconnect, reload) keeps the tile of the drawing it last had; a
        // blank pad never sent one to say that drawing is gone.
        if (membership.automatic && pad.isEmpty) sendBlank();
        // Joined once, any later join (reconnect, reload) is automatic.
        membership = {
          ...membership, room: message.room, name: message.name, rejoin: message.rejoin ?? null,
          joined: true, automatic: true,
        };
        membership.asked ??= message.name;
        tabStorage.set(MEMBERSHIP_KEY, JSON.stringify({
          room: membership.room, name: membership.name, asked: membership.asked, rejoin: membership.rejoin,
        }));
        history.replaceState(null, '', location.pathname);
        const fromDialog = dialog.element.open;
        dialog.close();
        opener.hidden = true;
        banner.show(membership);
        if (fromDialog) banner.leave.focus();   // the opener that would get focus back is hidden
        prompt = message.prompt;
        banner.showPrompt(prompt, digit);
        break;
      case 'prompt':
        prompt = message.digit;
        if (membership?.joined) banner.showPrompt(prompt, digit);
        break;
      case 'clear_pad':
        pad.clear();
        break;
      case 'removed':
        leave(GOODBYES.removed);
        break;
      case 'room_closed':
        leave(GOODBYES[message.reason] ?? GOODBYES.closed);
        break;
      case 'error':
        if (membership && !membership.joined && JOIN_ERRORS.has(message.code)) refused(message);
        break;
    }
  });

  let saved = null;
  try {
    saved = JSON.parse(tabStorage.get(MEMBERSHIP_KEY) ?? 'null');
  } catch { /* a damaged entry is no membership */ }
  const linked = new URLSearchParams(location.search).get('room');
  const sameClass = saved?.room && (!linked || formatCode(linked) === formatCode(saved.room));
  if (sameClass) membership = { asked: saved.name, ...saved, joined: false, automatic: true };
  else if (linked) dialog.open({ code: linked });
}
