// The marker probe of the glass-to-glass benchmarks (the glass-to-glass
// scenario here and BenchmarkGlassToGlass in cmd/loco). It runs in the
// page: it watches a source (a <video> through requestVideoFrameCallback,
// or a canvas every animation frame) and tells when the mean brightness of
// a region of it crosses half scale. The test guest has two markers: F9
// turns the bottom-right fifth of the screen white and back (a few KB of
// video memory: the display path's latency), F12 turns the whole 800x600
// console from dark to light and back (a full repaint, ~50 ms more than F9
// under TCG).
window.bench = (() => {
  const c = document.createElement('canvas'); c.width = 32; c.height = 24;
  const g = c.getContext('2d', { willReadFrequently: true });
  let region = [0, 0, 1, 1];
  const luma = (src) => {
    const w = src.videoWidth || src.width, h = src.videoHeight || src.height;
    g.drawImage(src, region[0] * w, region[1] * h, region[2] * w, region[3] * h, 0, 0, 32, 24);
    const d = g.getImageData(0, 0, 32, 24).data;
    let s = 0;
    for (let i = 0; i < d.length; i += 4) s += d[i] + d[i + 1] + d[i + 2];
    return s / (d.length / 4) / 3;
  };
  let last = { light: null, at: 0 };
  let waiters = [];
  // received: for each WebRTC trial, when the frame's last packet arrived
  // (requestVideoFrameCallback's receiveTime), from the key press;
  // expected: when Chromium expects to put that frame on the screen
  // (expectedDisplayTime, one composited frame after the callback).
  const received = [], expected = [];
  const seen = (light, at, recv, exp) => {
    last = { light, at };
    waiters = waiters.filter((w) => {
      if (w.light !== light) return true;
      if (recv) received.push(recv - w.t0);
      if (exp) expected.push(exp - w.t0);
      w.resolve(at);
      return false;
    });
  };
  return {
    watchVideo(video) {
      // now is the start of the rendering frame that first has the video
      // frame, the same reference requestAnimationFrame gives the canvas
      // below, so both paths are timed alike.
      const cb = (now, meta) => {
        const l = luma(video);
        seen(l > 128, now, meta.receiveTime, meta.expectedDisplayTime); video.requestVideoFrameCallback(cb); };
      video.requestVideoFrameCallback(cb);
    },
    watchCanvas(canvas) {
      const cb = (now) => { seen(luma(canvas) > 128, now); requestAnimationFrame(cb); };
      requestAnimationFrame(cb);
    },
    // watch picks the region (fractions of the frame) the next frames are judged by.
    watch(x, y, w, h) { region = [x, y, w, h]; last = { light: null, at: 0 }; return true; },
    state() { return last.light; },
    received() { return received.splice(0); },
    expected() { return expected.splice(0); },
    // trial sends the marker key with send(down) and resolves with the time
    // from sending it until a frame with the marker toggled is shown.
    trial(send) {
      const want = !last.light;
      return new Promise((resolve, reject) => {
        const t0 = performance.now();
        waiters.push({ light: want, t0, resolve: (at) => resolve(at - t0) });
        send(true); send(false);
        setTimeout(() => reject(new Error('no marker within 5 s')), 5000);
      });
    },
  };
})();
