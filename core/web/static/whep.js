// A WHEP viewer (draft-ietf-wish-whep) that never gives up: it reconnects
// with backoff whenever the stream fails, stalls or cannot be set up, for
// as long as it is not stopped.

// The stream plugin sends a still screen again once a second, so a stream
// that decodes no frame for this long is dead (the plugin was restarted,
// the guest's display went away).
const STALL_MS = 3500;
// Setting a stream up includes connecting to the guest's display and
// starting its encoder; allow for a busy host.
const FIRST_FRAME_MS = 8000;
const BACKOFF_MIN_MS = 300;
const BACKOFF_MAX_MS = 8000;

export class WhepStream {
  // url: the WHEP endpoint; token: the API token; on: callbacks
  // { stream(MediaStream), state(text), stats(object) }.
  constructor(url, token, on) {
    this.url = url;
    this.token = token;
    this.on = on;
    this.pc = null;
    this.location = null;
    this.stopped = false;
    this.failures = 0;
    this.connects = 0;
    this.lastFrames = 0;
    this.lastProgress = 0;
    this.connectedAt = 0;
    this.sawFrames = false;
    this.timer = null;
    this.stats = { fps: 0, framesDecoded: 0, width: 0, height: 0, bitrate: 0, audioLevel: 0 };
  }

  start() {
    this.stopped = false;
    this.connect();
    this.watch = setInterval(() => this.check(), 1000);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.watch);
    clearInterval(this.fast);
    clearTimeout(this.timer);
    this.teardown();
  }

  async connect() {
    if (this.stopped) return;
    this.teardown();
    this.connects++;
    this.on.state(this.connects > 1 ? 'reconnecting' : 'connecting');
    const pc = new RTCPeerConnection();
    this.pc = pc;
    this.sawFrames = false;
    this.lastFrames = 0;
    this.connectedAt = performance.now();
    // Until the first frame is decoded, look ten times a second: a focus
    // switch shows the full stream as soon as it has a picture.
    clearInterval(this.fast);
    this.fast = setInterval(() => this.check(), 100);
    this.lastProgress = performance.now();
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const stream = new MediaStream();
    pc.ontrack = (e) => {
      // Play frames as soon as they are decoded: a game wants the lowest
      // delay, and on a LAN the jitter buffer has little jitter to absorb.
      if ('jitterBufferTarget' in e.receiver) e.receiver.jitterBufferTarget = 0;
      else if ('playoutDelayHint' in e.receiver) e.receiver.playoutDelayHint = 0;
      stream.addTrack(e.track);
      this.on.stream(stream);
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      if (pc.connectionState === 'failed' || pc.connectionState === 'closed') this.retry('connection ' + pc.connectionState);
    };
    try {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      // No waiting for ICE gathering: the plugin's answer carries its
      // candidates, and our connectivity checks reach it from any of ours.
      const resp = await fetch(this.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp', Authorization: 'Bearer ' + this.token },
        body: offer.sdp,
      });
      if (resp.status !== 201) {
        let msg = resp.status + '';
        try { msg = (await resp.json()).error || msg; } catch (_) { /* not JSON */ }
        throw new Error(msg);
      }
      if (pc !== this.pc) return;
      this.location = new URL(resp.headers.get('Location'), location.href).href;
      await pc.setRemoteDescription({ type: 'answer', sdp: await resp.text() });
    } catch (err) {
      if (pc === this.pc) this.retry(String(err.message || err));
    }
  }

  // teardown closes the current connection and hangs up its session.
  teardown() {
    if (this.pc) {
      this.pc.ontrack = null;
      this.pc.onconnectionstatechange = null;
      this.pc.close();
      this.pc = null;
    }
    if (this.location) {
      const loc = this.location;
      this.location = null;
      // Best effort: a restarted plugin no longer knows the session.
      fetch(loc, { method: 'DELETE', headers: { Authorization: 'Bearer ' + this.token } }).catch(() => {});
    }
  }

  retry(why) {
    if (this.stopped || this.timer) return;
    this.failures++;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.failures - 1, 6));
    this.on.state('down: ' + why + '; retrying in ' + (delay / 1000).toFixed(1) + ' s');
    this.teardown();
    this.timer = setTimeout(() => { this.timer = null; this.connect(); }, delay);
  }

  async check() {
    const pc = this.pc;
    if (!pc || this.timer) return;
    let video = null, audio = null;
    try {
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') video = s;
        if (s.type === 'inbound-rtp' && s.kind === 'audio') audio = s;
      });
    } catch (_) {
      return;
    }
    if (pc !== this.pc) return;
    const now = performance.now();
    const frames = video ? video.framesDecoded || 0 : 0;
    if (video) {
      const prev = this.prevVideo;
      let bitrate = 0;
      if (prev && video.timestamp > prev.timestamp) {
        bitrate = (8 * (video.bytesReceived - prev.bytesReceived)) / ((video.timestamp - prev.timestamp) / 1000);
      }
      this.prevVideo = video;
      this.stats = {
        fps: video.framesPerSecond || 0,
        framesDecoded: frames,
        width: video.frameWidth || 0,
        height: video.frameHeight || 0,
        bitrate,
        audioLevel: audio ? audio.audioLevel || 0 : 0,
      };
      this.on.stats(this.stats);
    }
    if (frames > this.lastFrames) {
      this.lastFrames = frames;
      this.lastProgress = now;
      if (!this.sawFrames) {
        this.sawFrames = true;
        clearInterval(this.fast);
        this.failures = 0;
        this.on.state('live');
      }
      return;
    }
    const limit = this.sawFrames ? STALL_MS : FIRST_FRAME_MS;
    if (now - this.lastProgress > limit) {
      this.retry(this.sawFrames ? 'stream stalled' : 'no video yet');
    }
  }
}
