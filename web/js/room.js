// Classroom mode on the drawing page: join a teacher's room with its code and a display name
// (or arrive by a join link, /?room=CODE), show the teacher's prompt, and obey "clear pad",
// "removed" and "room closed" (docs/protocol.md, "Classroom"). Joining rides on the page's own
// /ws stream as a control message, so its reconnects rejoin and the drawing is classified
// exactly as in single-user mode. All user text reaches the page through textContent.

const MEMBERSHIP_KEY = 'digitstream.room';   // sessionStorage {room, name}: a reload rejoins
const NAME_KEY = 'digitstream.name';         // localStorage: the name is offered again next time
const MAX_NAME_LENGTH = 32;
const JOIN_ERRORS = new Set(['room_not_found', 'room_full', 'bad_name', 'rate_limited']);
const GOODBYES = {
  removed: 'The teacher removed you from the class. You can keep drawing on your own.',
  closed: 'The class has ended. You can keep drawing on your own.',
  expired: 'The class closed after a quiet spell. You can keep drawing on your own.',
};

/** Builds an element: el('p', {className: 'x', hidden: true}, child, 'text', …). */
function el(tag, props = {}, ...children) {
  const element = Object.assign(document.createElement(tag), props);
  element.append(...children);
  return element;
}

function formatCode(code) { return `${code.slice(0, 4)} ${code.slice(4)}`; }

class JoinDialog {
  constructor(onSubmit) {
    this.code = el('input', {
      id: 'join-code', name: 'code', required: true, maxLength: 12, autocomplete: 'off',
      spellcheck: false, autocapitalize: 'characters', placeholder: 'ABCD EFGH',
    });
    this.name = el('input', {
      id: 'join-name', name: 'name', required: true, maxLength: MAX_NAME_LENGTH, autocomplete: 'nickname',
      value: localStorage.getItem(NAME_KEY) ?? '',
    });
    this.error = el('p', { id: 'join-error', className: 'join-error', role: 'alert' });
    const cancel = el('button', { type: 'button', value: 'cancel', textContent: 'Cancel' });
    cancel.addEventListener('click', () => this.element.close());
    const form = el('form', { className: 'join-form' },
      el('h2', { textContent: 'Join a class' }),
      el('label', { htmlFor: 'join-code', textContent: 'Class code' }), this.code,
      el('label', { htmlFor: 'join-name', textContent: 'Your name' }), this.name,
      this.error,
      el('div', { className: 'join-buttons' }, cancel, el('button', { type: 'submit', className: 'primary', textContent: 'Join' })));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      localStorage.setItem(NAME_KEY, this.name.value.trim());
      onSubmit(this.code.value, this.name.value);
    });
    this.element = el('dialog', { id: 'join-dialog', className: 'join-dialog' }, form);
  }

  open({ code = this.code.value, error = '' } = {}) {
    this.code.value = code;
    this.error.textContent = error;
    if (!this.element.open) this.element.showModal();
    (code ? this.name : this.code).focus();
  }

  close() { if (this.element.open) this.element.close(); }
}

class RoomBanner {
  constructor(onLeave) {
    this.code = el('strong', { id: 'room-code' });
    this.name = el('span', { id: 'room-name' });
    this.prompt = el('span', { id: 'room-prompt', className: 'room-prompt' });
    this.notice = el('p', { id: 'room-notice', className: 'room-notice', role: 'status', hidden: true });
    const leave = el('button', { id: 'room-leave', type: 'button', textContent: 'Leave' });
    leave.addEventListener('click', onLeave);
    this.bar = el('div', { id: 'room-banner', className: 'room-banner', hidden: true },
      el('span', { className: 'room-where' }, 'Class ', this.code, ' · ', this.name), this.prompt, leave);
    this.element = el('section', { className: 'room-strip', ariaLabel: 'Class' }, this.bar, this.notice);
  }

  show({ room, name }) {
    this.code.textContent = formatCode(room);
    this.name.textContent = name;
    this.notice.hidden = true;
    this.bar.hidden = false;
  }

  showPrompt(prompt, digit) {
    this.prompt.hidden = prompt === null;
    this.prompt.textContent = prompt === null ? '' : `Draw a ${prompt}`;
    this.prompt.dataset.match = String(prompt !== null && digit === prompt);
  }

  say(text) {
    this.bar.hidden = true;
    this.notice.textContent = text;
    this.notice.hidden = !text;
  }
}

export function attachClassroom({ stream, pad }) {
  document.head.append(el('link', { rel: 'stylesheet', href: 'room.css' }));
  let membership = null;     // {room, name, joined}
  let prompt = null;
  let digit = null;

  const dialog = new JoinDialog((code, name) => join(code, name));
  const banner = new RoomBanner(() => leave(''));
  const opener = el('button', { id: 'join-class', type: 'button', className: 'join-class', textContent: 'Join a class' });
  opener.addEventListener('click', () => dialog.open());
  document.querySelector('.topbar').append(opener);
  document.querySelector('.topbar').after(banner.element);
  document.body.append(dialog.element);

  function join(room, name) {
    membership = { room, name, joined: false };
    stream.sendControl({ type: 'join', room, name });
  }

  function leave(goodbye) {
    if (membership?.joined && !goodbye) stream.sendControl({ type: 'leave' });
    membership = null;
    prompt = null;
    sessionStorage.removeItem(MEMBERSHIP_KEY);
    opener.hidden = false;
    banner.say(goodbye);
  }

  stream.onOpen(() => { if (membership) join(membership.room, membership.name); });

  stream.onPrediction((answer) => {
    digit = answer.empty ? null : answer.digit;
    banner.showPrompt(prompt, digit);
  });

  stream.onMessage((message) => {
    switch (message.type) {
      case 'joined':
        membership = { room: message.room, name: message.name, joined: true };
        sessionStorage.setItem(MEMBERSHIP_KEY, JSON.stringify({ room: message.room, name: message.name }));
        history.replaceState(null, '', location.pathname);
        dialog.close();
        opener.hidden = true;
        banner.show(membership);
        prompt = message.prompt;
        banner.showPrompt(prompt, digit);
        break;
      case 'prompt':
        prompt = message.digit;
        banner.showPrompt(prompt, digit);
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
        if (membership && !membership.joined && JOIN_ERRORS.has(message.code)) {
          const code = membership.room;
          leave('');
          dialog.open({ code, error: message.message });
        }
        break;
    }
  });

  const saved = JSON.parse(sessionStorage.getItem(MEMBERSHIP_KEY) ?? 'null');
  const linked = new URLSearchParams(location.search).get('room');
  if (saved && (!linked || linked.toUpperCase() === saved.room)) membership = { ...saved, joined: false };
  else if (linked) dialog.open({ code: linked });
}
