// The loco dashboard: a tile per guest with its live stream (WebRTC, VNC or
// a Moonlight host's address, whichever the stream plugin serves), click a tile to
// focus it (bigger, keyboard and mouse go to that guest, its sound on and
// every other muted), an audio output selector, and the LAN's health.
import { WhepStream } from './whep.js';
import { RfbStream } from './rfb.js';
import { InputChannel, capture } from './input.js';

// The page loaded this module with the API token in its URL (see
// core/web); every API call carries it.
const token = new URL(import.meta.url).searchParams.get('token') || '';

function api(path, opts = {}) {
  return fetch(path, { ...opts, headers: { Authorization: 'Bearer ' + token, ...(opts.headers || {}) } });
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// Everything tests (and curious people in the console) may want to look at.
const loco = { tiles: new Map(), focused: null, lastKeySent: null, audioContext: null };
window.loco = loco;

const header = el('header');
const title = el('h1', null, 'loco');
const summary = el('span', 'summary', '');
const sinkLabel = el('label', 'sink');
const sinkSelect = el('select');
sinkLabel.append('sound to ', sinkSelect);
const release = el('button', 'release', 'release keyboard');
release.hidden = true;
const hint = el('span', 'hint', 'click a guest to play it');
header.append(title, summary, hint, release, sinkLabel);

const main = el('main');
const grid = el('section', 'grid');
const side = el('aside');
const lanTitle = el('h2', null, 'LAN');
const lanBody = el('div', 'lan', 'loading…');
side.append(lanTitle, lanBody);
main.append(grid, side);
document.body.append(header, main);

// A tile plays its guest with the player that fits what the stream plugin
// serves (GET /api/instances/{id}/stream): WHEP (WebRTC, stream "webrtc"),
// RFB over a WebSocket (noVNC, stream "vnc"), or, for Moonlight (stream
// "sunshine"), the address a Moonlight client adds and a PIN form, with a
// screenshot now and then when there is an input plugin. Focus, keys and
// the mouse are the same for all: loco's input WebSocket.
const PLAYERS = ['whep', 'rfb', 'moonlight'];

class Tile {
  constructor(inst) {
    this.index = inst.index;
    this.name = inst.name;
    this.absolute = inst.pointer === 'tablet';
    this.el = el('div', 'tile');
    this.el.dataset.index = inst.index;
    this.el.dataset.name = inst.name;
    this.video = el('video');
    this.video.autoplay = true;
    this.video.playsInline = true;
    this.video.muted = true;
    const label = el('div', 'label');
    this.nameEl = el('span', 'name', inst.name);
    this.stateEl = el('span', 'state', inst.state);
    this.fpsEl = el('span', 'fps', '');
    this.lockBtn = el('button', 'lock', 'lock mouse');
    this.lockBtn.hidden = true;
    this.lockBtn.addEventListener('click', (e) => { e.stopPropagation(); this.surface.requestPointerLock(); });
    label.append(this.nameEl, this.stateEl, this.fpsEl, this.lockBtn);
    this.status = el('div', 'status', 'connecting');
    this.meter = el('div', 'meter');
    this.meterBar = el('div', 'bar');
    this.meter.append(this.meterBar);
    this.el.append(label, this.status, this.meter);
    this.el.addEventListener('click', () => focus(this));
    this.streamState = 'connecting';
    this.stats = {};
    this.server = null;
    this.level = 0;
    this.player = null;
    this.shown = null;
    this.thumb = null;
    this.full = null;
    this.rfb = null;
    this.update(inst);
    this.pick();
  }

  // pick asks how this guest is watched and starts the player for the
  // first protocol the dashboard knows; until it knows, it asks again.
  async pick() {
    if (this.removed) return;
    let desc = null, why = '';
    try {
      const resp = await api(`/api/instances/${this.index}/stream`);
      if (resp.ok) desc = await resp.json();
      else why = (await resp.json().catch(() => ({}))).error || String(resp.status);
    } catch (err) {
      why = String(err.message || err);
    }
    if (this.removed) return;
    const ep = desc && PLAYERS.map((p) => desc.endpoints.find((e) => e.protocol === p)).find(Boolean);
    if (!ep) {
      this.setState('no player: ' + (why || 'the stream plugin serves no protocol this dashboard plays') + '; asking again');
      this.pickTimer = setTimeout(() => this.pick(), 3000);
      return;
    }
    this.endpoint = ep;
    this.player = ep.protocol;
    this.el.dataset.player = ep.protocol;
    if (ep.protocol === 'whep') {
      this.el.prepend(this.video);
      this.video.addEventListener('dblclick', () => { if (loco.focused === this) this.video.requestPointerLock(); });
      // Every tile plays the thumb variant (at most 400x300, 10 fps, only
      // on change); the focused one plays full. The full stream starts at
      // the click and replaces the thumb in the same <video> once it is
      // live, so pointer lock and the sound meter stay on one element.
      this.thumb = this.open('thumb');
      if (loco.focused === this) this.full = this.open('full');
    } else if (ep.protocol === 'rfb') {
      this.screen = el('div', 'screen');
      this.el.prepend(this.screen);
      this.screen.addEventListener('dblclick', () => { if (loco.focused === this) this.screen.requestPointerLock(); });
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      this.rfb = new RfbStream(`${proto}//${location.host}${ep.url}?token=${encodeURIComponent(token)}`, this.screen, {
        state: (t) => this.setState(t),
        stats: (st) => { this.stats = st; this.render(); },
      });
      this.rfb.start();
    } else {
      this.moonlight(ep);
    }
    if (loco.focused === this) this.attachInput();
  }

  // moonlight shows what a Moonlight client adds and a PIN form; the
  // picture goes to Moonlight, not to the browser.
  moonlight(ep) {
    this.screen = el('div', 'screen moonlight');
    this.shot = el('img');
    this.shot.alt = '';
    const info = el('div', 'moonlight-info');
    info.append(el('div', null, 'Moonlight: add ' + ep.address + ':' + ep.port));
    this.mlStatus = el('div', ep.healthy ? 'ok' : 'bad', ep.status || (ep.healthy ? 'host up' : 'host down'));
    info.append(this.mlStatus);
    if (ep.pair_url) {
      const form = el('form', 'pair');
      const pin = el('input');
      pin.placeholder = 'PIN';
      pin.inputMode = 'numeric';
      pin.maxLength = 4;
      const go = el('button', null, 'pair');
      form.append(pin, go);
      form.addEventListener('click', (e) => e.stopPropagation());
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const resp = await api(ep.pair_url, { method: 'POST', body: JSON.stringify({ pin: pin.value, name: 'dashboard' }) });
        const body = await resp.json().catch(() => ({}));
        this.mlStatus.textContent = resp.ok ? 'paired' : 'pairing failed: ' + (body.error || resp.status);
      });
      info.append(form);
    }
    this.screen.append(this.shot, info);
    this.el.prepend(this.screen);
    this.setState('live');
    const refresh = async () => {
      const resp = await api(`/api/instances/${this.index}/screenshot`).catch(() => null);
      if (!resp || !resp.ok) return;
      const url = URL.createObjectURL(await resp.blob());
      this.shot.onload = () => URL.revokeObjectURL(url);
      this.shot.src = url;
    };
    refresh();
    this.shotTimer = setInterval(refresh, 2000);
  }

  // stream is the stream the tile shows (or will show first).
  get stream() { return this.rfb || (this.shown === 'full' && this.full) || this.thumb || this.full; }

  // surface is the element the guest's picture is on: mouse and pointer
  // lock go there.
  get surface() { return this.player === 'whep' ? this.video : (this.screen || this.video); }

  // pictureSize is the guest's picture in pixels, for absolute positions.
  pictureSize() {
    if (this.player === 'whep') return [this.video.videoWidth, this.video.videoHeight];
    const c = this.rfb ? this.rfb.canvas : this.shot;
    return c ? [c.width || c.naturalWidth, c.height || c.naturalHeight] : [0, 0];
  }

  open(variant) {
    const ws = new WhepStream(`/api/instances/${this.index}/whep?variant=${variant}`, token, {
      stream: (s) => { ws.media = s; if (!this.shown || this.shown === variant) this.show(variant); },
      state: (t) => {
        if (t === 'live' && this.shown !== variant && ws.media && (variant === 'full') === (loco.focused === this)) this.show(variant);
        if (this.shown === variant || !this.shown) this.setState(t);
      },
      stats: (st) => { if (this.shown === variant) { this.stats = st; this.render(); } },
    });
    ws.start();
    return ws;
  }

  // show puts a variant's stream in the tile and stops the other one,
  // whose encoder lingers in the plugin for a quick switch back.
  show(variant) {
    const ws = variant === 'full' ? this.full : this.thumb;
    if (!ws || !ws.media) return;
    this.shown = variant;
    this.el.dataset.variant = variant;
    if (this.video.srcObject !== ws.media) {
      this.video.srcObject = ws.media;
      this.applySink();
      this.video.play().catch(() => {});
      if (loco.focused === this) { this.stopMeter(); this.startMeter(); }
    }
    this.shownAt = performance.now();
    if (ws.sawFrames) this.setState('live');
    const other = variant === 'full' ? 'thumb' : 'full';
    if (this[other]) { this[other].stop(); this[other] = null; }
  }

  setState(t) { this.streamState = t; this.status.textContent = t; this.el.classList.toggle('live', t === 'live'); }

  update(inst) {
    this.inst = inst;
    this.stateEl.textContent = inst.state;
    this.el.classList.toggle('down', inst.state !== 'running');
  }

  render() {
    const st = this.stats;
    let t = st.fps ? `${Math.round(st.fps)} fps` : '';
    if (st.width) t += ` · ${st.width}×${st.height}`;
    if (st.bitrate) t += ` · ${(st.bitrate / 1000).toFixed(0)} kbit/s`;
    this.fpsEl.textContent = t;
  }

  applySink() {
    if (loco.sinkId && this.video.setSinkId) this.video.setSinkId(loco.sinkId).catch(() => {});
  }

  focus() {
    this.el.classList.add('focused');
    this.focusedAt = performance.now();
    if (this.player === 'whep') {
      if (!this.full) this.full = this.open('full');
      this.video.muted = false;
      this.video.play().catch(() => {});
    }
    if (this.player) this.attachInput();
  }

  // attachInput sends the page's keyboard and this tile's mouse to the
  // guest through loco's input WebSocket, whatever the player.
  attachInput() {
    if (this.input) return;
    this.lockBtn.hidden = false;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${proto}//${location.host}/api/instances/${this.index}/input/ws?token=${encodeURIComponent(token)}`;
    this.input = new InputChannel(url, (t) => { this.inputState = t; this.el.dataset.input = t; });
    this.uncapture = capture(this.el, this.surface, this.input, this.absolute, () => this.pictureSize());
    this.startMeter();
  }

  blur() {
    this.el.classList.remove('focused');
    if (this.player === 'whep' && !this.thumb) this.thumb = this.open('thumb');
    this.video.muted = true;
    this.lockBtn.hidden = true;
    if (this.uncapture) this.uncapture();
    if (this.input) this.input.close();
    this.uncapture = this.input = null;
    this.stopMeter();
  }

  // startMeter shows the focused guest's sound level (WebAudio analyser).
  startMeter() {
    const s = this.player === 'whep' && this.video.srcObject;
    if (!s || !s.getAudioTracks().length || this.analyser) return;
    if (!loco.audioContext) loco.audioContext = new AudioContext();
    const ctx = loco.audioContext;
    ctx.resume().catch(() => {});
    this.source = ctx.createMediaStreamSource(s);
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 2048;
    this.source.connect(this.analyser);
    const buf = new Float32Array(this.analyser.fftSize);
    this.meterTimer = setInterval(() => {
      this.analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += v * v;
      this.level = Math.sqrt(sum / buf.length);
      this.el.dataset.level = this.level.toFixed(4);
      this.meterBar.style.width = Math.min(100, this.level * 300).toFixed(0) + '%';
    }, 100);
  }

  stopMeter() {
    clearInterval(this.meterTimer);
    if (this.source) this.source.disconnect();
    this.source = this.analyser = null;
    this.level = 0;
    this.meterBar.style.width = '0%';
  }

  remove() {
    this.removed = true;
    this.blur();
    clearTimeout(this.pickTimer);
    clearInterval(this.shotTimer);
    for (const ws of [this.thumb, this.full, this.rfb]) if (ws) ws.stop();
    this.el.remove();
  }
}

function focus(tile) {
  if (loco.focused === tile) return;
  if (loco.focused) loco.focused.blur();
  loco.focused = tile;
  if (tile) tile.focus();
  grid.classList.toggle('has-focus', !!tile);
  release.hidden = !tile;
  hint.textContent = tile ? `keyboard and mouse go to ${tile.name}` : 'click a guest to play it';
}
loco.focus = (key) => focus([...loco.tiles.values()].find((t) => t.index === key || t.name === key) || null);
release.addEventListener('click', () => focus(null));

function layout() {
  const n = loco.tiles.size;
  // Three across as in the 3x3 grid, more when there are more guests.
  const cols = Math.max(Math.min(n, 3), Math.ceil(Math.sqrt(n)));
  grid.style.setProperty('--cols', String(Math.max(cols, 1)));
}

async function pollInstances() {
  try {
    const resp = await api('/api/instances');
    if (!resp.ok) throw new Error((await resp.json()).error || resp.status);
    const list = await resp.json();
    const seen = new Set();
    for (const inst of list) {
      seen.add(inst.index);
      const t = loco.tiles.get(inst.index);
      if (t) t.update(inst);
      else {
        const nt = new Tile(inst);
        loco.tiles.set(inst.index, nt);
        const after = [...grid.children].find((c) => Number(c.dataset.index) > inst.index);
        grid.insertBefore(nt.el, after || null);
      }
    }
    for (const [i, t] of loco.tiles) {
      if (!seen.has(i)) {
        if (loco.focused === t) focus(null);
        t.remove();
        loco.tiles.delete(i);
      }
    }
    const running = list.filter((i) => i.state === 'running').length;
    summary.textContent = `${running}/${list.length} guests running` + (list[0] ? ` · ${list[0].accel}` : '');
    layout();
  } catch (err) {
    summary.textContent = 'API unreachable: ' + (err.message || err);
  }
}

async function pollStreams() {
  try {
    const resp = await api('/api/streams');
    if (!resp.ok) return;
    for (const st of await resp.json()) {
      const t = loco.tiles.get(st.index);
      // The tooltip describes the encoder of the variant the tile shows.
      if (t && st.variant === (t.shown || 'thumb')) {
        t.server = st;
        t.el.title = `${st.variant} encoder: ${st.width}×${st.height}, ${st.fps.toFixed(0)} fps, ` +
          `${(st.bitrate_bps / 1000).toFixed(0)} kbit/s, ${st.encode_ms.toFixed(1)} ms/frame, ` +
          `${st.viewers} viewer(s), ${st.key_frames} key frames, ${st.repeats} repeats`;
      }
    }
  } catch (_) { /* the tiles say when streams are down */ }
}

const pick = (o, ...keys) => { for (const k of keys) if (o[k] !== undefined) return o[k]; return undefined; };

async function pollLAN() {
  let resp;
  try {
    resp = await api('/api/lan-status');
  } catch (err) {
    lanBody.textContent = 'API unreachable';
    return;
  }
  if (resp.status === 404) {
    lanBody.textContent = 'This cluster has no network plugin.';
    return;
  }
  if (!resp.ok) {
    let msg = resp.status;
    try { msg = (await resp.json()).error; } catch (_) { /* not JSON */ }
    lanBody.textContent = 'LAN status unavailable: ' + msg;
    return;
  }
  const st = await resp.json();
  const healthy = pick(st, 'healthy', 'Healthy');
  const box = el('div');
  const head = el('p', healthy ? 'ok' : 'bad', (healthy ? '● healthy' : '● unhealthy') + ' · ' + (pick(st, 'summary', 'Summary') || ''));
  box.append(head);
  const table = el('table');
  const hr = el('tr');
  for (const h of ['guest', 'IP', 'link', 'reach', 'rx', 'tx']) hr.append(el('th', null, h));
  table.append(hr);
  for (const p of pick(st, 'ports', 'Ports') || []) {
    const tr = el('tr');
    const idx = pick(p, 'instance', 'Instance');
    const name = pick(p, 'name', 'Name') || (loco.tiles.get(idx) || {}).name || String(idx);
    const rtt = pick(p, 'rtt_ms', 'RTTMillis');
    const reach = pick(p, 'reachable', 'Reachable');
    tr.append(
      el('td', null, name),
      el('td', null, (pick(p, 'ips', 'IPs') || []).join(' ')),
      el('td', pick(p, 'link_up', 'LinkUp') ? 'ok' : 'bad', pick(p, 'link_up', 'LinkUp') ? 'up' : 'down'),
      el('td', reach ? 'ok' : 'bad', reach ? (rtt ? rtt.toFixed(1) + ' ms' : 'yes') : 'no'),
      el('td', null, String(pick(p, 'rx_frames', 'RxFrames') || 0)),
      el('td', null, String(pick(p, 'tx_frames', 'TxFrames') || 0)),
    );
    table.append(tr);
  }
  box.append(table);
  lanBody.replaceChildren(box);
}

async function listSinks() {
  if (!('setSinkId' in HTMLMediaElement.prototype) || !navigator.mediaDevices) {
    sinkLabel.hidden = true;
    return;
  }
  const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
  const outs = devices.filter((d) => d.kind === 'audiooutput');
  const current = sinkSelect.value;
  sinkSelect.replaceChildren();
  const def = el('option', null, 'default output');
  def.value = '';
  sinkSelect.append(def);
  for (const d of outs) {
    if (d.deviceId === 'default' || d.deviceId === '') continue;
    const o = el('option', null, d.label || 'output ' + d.deviceId.slice(0, 6));
    o.value = d.deviceId;
    sinkSelect.append(o);
  }
  sinkSelect.value = current;
}
sinkSelect.addEventListener('change', () => {
  loco.sinkId = sinkSelect.value;
  for (const t of loco.tiles.values()) t.applySink();
});
if (navigator.mediaDevices) navigator.mediaDevices.addEventListener('devicechange', listSinks);

listSinks();
pollInstances();
pollLAN();
setInterval(pollInstances, 2000);
setInterval(pollStreams, 2000);
setInterval(pollLAN, 3000);
