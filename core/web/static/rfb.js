// An RFB (VNC) player for a guest whose stream plugin serves RFB over a
// WebSocket (stream "vnc"): noVNC from Debian's novnc package, which loco
// serves under /ui/novnc/. noVNC only draws: it is view-only, and keys and
// the mouse go through loco's input WebSocket like every other tile, so
// focus works the same whichever backend runs.

const BACKOFF_MIN_MS = 300;
const BACKOFF_MAX_MS = 8000;
// QEMU sends a picture at connect, and the dashboard asks for updates
// continuously; a connection that draws nothing for this long is dead.
const FIRST_FRAME_MS = 8000;

export class RfbStream {
  // url: the WebSocket URL (with the token); target: the element noVNC
  // draws into; on: callbacks { state(text), stats(object) }.
  constructor(url, target, on) {
    this.url = url;
    this.target = target;
    this.on = on;
    this.rfb = null;
    this.stopped = false;
    this.failures = 0;
    this.connects = 0;
    this.frames = 0;
    this.bytes = 0;
    this.sawFrames = false;
    this.timer = null;
    this.stats = { fps: 0, framesDecoded: 0, width: 0, height: 0, bitrate: 0 };
  }

  start() {
    this.stopped = false;
    this.connect();
    this.watch = setInterval(() => this.check(), 1000);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.watch);
    clearTimeout(this.timer);
    this.teardown();
  }

  // canvas is where noVNC draws: the element the tile's mouse is on.
  get canvas() { return this.target.querySelector('canvas'); }

  async connect() {
    if (this.stopped) return;
    this.teardown();
    this.connects++;
    this.on.state(this.connects > 1 ? 'reconnecting' : 'connecting');
    let RFB;
    try {
      ({ default: RFB } = await import('/ui/novnc/core/rfb.js'));
    } catch (err) {
      this.retry('noVNC is not installed (apt-get install novnc)');
      return;
    }
    if (this.stopped) return;
    this.sawFrames = false;
    this.connectedAt = performance.now();
    const rfb = new RFB(this.target, this.url, { shared: true, wsProtocols: ['binary'] });
    this.rfb = rfb;
    rfb.viewOnly = true;
    rfb.focusOnClick = false;
    rfb.scaleViewport = true;
    rfb.background = '#000';
    this.hook(rfb);
    rfb.addEventListener('connect', () => {
      if (rfb !== this.rfb) return;
      this.countBytes(rfb);
      // noVNC may announce the connection after it drew the first frames.
      if (!this.sawFrames) this.on.state('connected');
    });
    rfb.addEventListener('disconnect', (e) => {
      if (rfb !== this.rfb) return;
      this.rfb = null;
      this.retry(e.detail && e.detail.clean ? 'display closed' : 'connection lost');
    });
  }

  // hook counts the frames noVNC puts on its canvas (a flip with damage:
  // one per framebuffer update that changed something) and the bytes it
  // receives. Display.flip and Websock's WebSocket are noVNC 1.3
  // internals: the public API has no frame counter. Without them the
  // tile still plays, and only its figures stay empty.
  hook(rfb) {
    const d = rfb._display;
    if (d && typeof d.flip === 'function') {
      const flip = d.flip.bind(d);
      d.flip = (fromQueue) => {
        const queued = d._renderQ && d._renderQ.length !== 0 && !fromQueue;
        const b = d._damageBounds;
        if (!queued && b && b.right > b.left && b.bottom > b.top) this.frame();
        return flip(fromQueue);
      };
    }
  }

  // countBytes wraps the WebSocket's message handler, which noVNC sets
  // when it opens the socket (so only from 'connect' on: the handshake's
  // few bytes are not counted).
  countBytes(rfb) {
    const ws = rfb._sock && rfb._sock._websocket;
    if (!ws || typeof ws.onmessage !== 'function') return;
    const recv = ws.onmessage;
    ws.onmessage = (e) => { this.bytes += (e.data && e.data.byteLength) || 0; return recv(e); };
  }

  frame() {
    this.frames++;
    if (!this.sawFrames) {
      this.sawFrames = true;
      this.failures = 0;
      this.on.state('live');
    }
  }

  teardown() {
    if (this.rfb) {
      const r = this.rfb;
      this.rfb = null;
      try { r.disconnect(); } catch (_) { /* already gone */ }
    }
    this.target.replaceChildren();
  }

  retry(why) {
    if (this.stopped || this.timer) return;
    this.failures++;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.failures - 1, 6));
    this.on.state('down: ' + why + '; retrying in ' + (delay / 1000).toFixed(1) + ' s');
    this.teardown();
    this.timer = setTimeout(() => { this.timer = null; this.connect(); }, delay);
  }

  check() {
    if (!this.rfb || this.timer) return;
    const now = performance.now();
    const prev = this.prev || { at: this.connectedAt, frames: 0, bytes: 0 };
    const dt = (now - prev.at) / 1000;
    const c = this.canvas;
    if (dt > 0) {
      this.stats = {
        fps: (this.frames - prev.frames) / dt,
        framesDecoded: this.frames,
        width: c ? c.width : 0,
        height: c ? c.height : 0,
        bitrate: (8 * (this.bytes - prev.bytes)) / dt,
      };
      this.on.stats(this.stats);
    }
    this.prev = { at: now, frames: this.frames, bytes: this.bytes };
    if (!this.sawFrames && now - this.connectedAt > FIRST_FRAME_MS) this.retry('no picture yet');
  }
}
