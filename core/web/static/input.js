// Keyboard and mouse of the focused guest, sent as JSON events over the
// input WebSocket (/api/instances/{id}/input/ws): {"key":{"qcode","down"}},
// {"rel":{"dx","dy"}}, {"abs":{"x","y"}} (0..32767), {"button":{"button",
// "down"}}, {"wheel":{"delta"}}.

// KeyboardEvent.code (the physical key, whatever the layout) to QEMU qcode.
const CODES = {
  Escape: 'esc', Backspace: 'backspace', Tab: 'tab', Enter: 'ret', Space: 'spc',
  Minus: 'minus', Equal: 'equal', BracketLeft: 'bracket_left', BracketRight: 'bracket_right',
  Backslash: 'backslash', Semicolon: 'semicolon', Quote: 'apostrophe', Backquote: 'grave_accent',
  Comma: 'comma', Period: 'dot', Slash: 'slash', IntlBackslash: 'less', CapsLock: 'caps_lock',
  ShiftLeft: 'shift', ShiftRight: 'shift_r', ControlLeft: 'ctrl', ControlRight: 'ctrl_r',
  AltLeft: 'alt', AltRight: 'alt_r', MetaLeft: 'meta_l', MetaRight: 'meta_r', ContextMenu: 'menu',
  PrintScreen: 'print', ScrollLock: 'scroll_lock', Pause: 'pause', Insert: 'insert', Home: 'home',
  PageUp: 'pgup', Delete: 'delete', End: 'end', PageDown: 'pgdn',
  ArrowRight: 'right', ArrowLeft: 'left', ArrowDown: 'down', ArrowUp: 'up',
  NumLock: 'num_lock', NumpadDivide: 'kp_divide', NumpadMultiply: 'kp_multiply',
  NumpadSubtract: 'kp_subtract', NumpadAdd: 'kp_add', NumpadEnter: 'kp_enter', NumpadDecimal: 'kp_decimal',
};

export function qcode(code) {
  if (CODES[code]) return CODES[code];
  let m;
  if ((m = /^Key([A-Z])$/.exec(code))) return m[1].toLowerCase();
  if ((m = /^Digit([0-9])$/.exec(code))) return m[1];
  if ((m = /^Numpad([0-9])$/.exec(code))) return 'kp_' + m[1];
  if ((m = /^F([0-9]{1,2})$/.exec(code))) return 'f' + m[1];
  return null;
}

const BUTTONS = ['left', 'middle', 'right'];

// InputChannel is the WebSocket of one guest, reconnected with backoff while
// the guest is focused. Events sent while it is down are dropped: replaying
// stale keystrokes later would be worse than losing them.
export class InputChannel {
  constructor(url, onState) {
    this.url = url;
    this.onState = onState;
    this.ws = null;
    this.closed = false;
    this.failures = 0;
    this.sent = 0;
    this.open();
  }

  open() {
    if (this.closed) return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => { this.failures = 0; this.onState('input ready'); };
    ws.onclose = () => {
      if (this.closed || ws !== this.ws) return;
      this.failures++;
      const delay = Math.min(8000, 250 * 2 ** Math.min(this.failures, 5));
      this.onState('input unavailable; retrying');
      setTimeout(() => this.open(), delay);
    };
    ws.onerror = () => {};
  }

  send(ev) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(ev));
      this.sent++;
      return true;
    }
    return false;
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }
}

// capture wires the page's keyboard and the tile's mouse to ch. It returns
// a function that undoes it and releases every key still held, so that no
// key stays down in the guest when the focus moves.
// video is the element the picture is on (a <video>, or noVNC's screen);
// size() gives the picture's size in pixels when it is not a <video>.
export function capture(tile, video, ch, absolute = true, size = null) {
  const held = new Set();
  const key = (down) => (e) => {
    const q = qcode(e.code);
    if (!q) return;
    e.preventDefault();
    e.stopPropagation();
    if (down) held.add(q); else held.delete(q);
    ch.send({ key: { qcode: q, down } });
    if (window.loco) window.loco.lastKeySent = { qcode: q, down, at: performance.now() };
  };
  const onDown = key(true), onUp = key(false);

  // The video's picture is letterboxed inside the element (object-fit:
  // contain); absolute positions are relative to the picture.
  const abs = (e) => {
    const r = video.getBoundingClientRect();
    const [pw, ph] = size ? size() : [video.videoWidth, video.videoHeight];
    const vw = pw || r.width, vh = ph || r.height;
    const scale = Math.min(r.width / vw, r.height / vh);
    const w = vw * scale, h = vh * scale;
    const x = (e.clientX - r.left - (r.width - w) / 2) / w;
    const y = (e.clientY - r.top - (r.height - h) / 2) / h;
    if (x < 0 || x > 1 || y < 0 || y > 1) return null;
    return { x: Math.round(x * 32767), y: Math.round(y * 32767) };
  };
  const locked = () => document.pointerLockElement === video;
  const onMove = (e) => {
    if (locked()) {
      if (e.movementX || e.movementY) ch.send({ rel: { dx: e.movementX, dy: e.movementY } });
    } else if (absolute) {
      // Only a guest with a tablet takes absolute positions; a PS/2-only
      // guest (Windows 98's default) needs pointer lock and relative motion.
      const a = abs(e);
      if (a) ch.send({ abs: a });
    }
  };
  const onButton = (down) => (e) => {
    const b = BUTTONS[e.button];
    if (!b) return;
    e.preventDefault();
    ch.send({ button: { button: b, down } });
  };
  const onMouseDown = onButton(true), onMouseUp = onButton(false);
  const onWheel = (e) => {
    e.preventDefault();
    if (e.deltaY) ch.send({ wheel: { delta: e.deltaY < 0 ? 1 : -1 } });
  };
  const noMenu = (e) => e.preventDefault();
  const releaseAll = () => {
    for (const q of held) ch.send({ key: { qcode: q, down: false } });
    held.clear();
  };

  document.addEventListener('keydown', onDown, true);
  document.addEventListener('keyup', onUp, true);
  window.addEventListener('blur', releaseAll);
  video.addEventListener('mousemove', onMove);
  video.addEventListener('mousedown', onMouseDown);
  video.addEventListener('mouseup', onMouseUp);
  video.addEventListener('wheel', onWheel, { passive: false });
  video.addEventListener('contextmenu', noMenu);
  return () => {
    releaseAll();
    document.removeEventListener('keydown', onDown, true);
    document.removeEventListener('keyup', onUp, true);
    window.removeEventListener('blur', releaseAll);
    video.removeEventListener('mousemove', onMove);
    video.removeEventListener('mousedown', onMouseDown);
    video.removeEventListener('mouseup', onMouseUp);
    video.removeEventListener('wheel', onWheel);
    video.removeEventListener('contextmenu', noMenu);
    if (locked()) document.exitPointerLock();
  };
}
