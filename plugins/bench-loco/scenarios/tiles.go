package scenarios

// DecodedFPS is a page function of the dashboard: given ms, it resolves to
// every tile's frames shown per second over that long, [{name, fps}]:
// frames decoded by a WebRTC tile's peer connection, frames drawn by an
// RFB (noVNC) tile. cmd/loco's tests use it too.
const DecodedFPS = `(async (ms) => {
  const tiles = [...loco.tiles.values()];
  const frames = () => Promise.all(tiles.map(async (t) => {
    let n = 0;
    const s = t.stream;
    if (s && s.pc) (await s.pc.getStats()).forEach((x) => {
      if (x.type === 'inbound-rtp' && x.kind === 'video') n = x.framesDecoded || 0;
    });
    else if (s && typeof s.frames === 'number') n = s.frames;
    return n;
  }));
  const a = await frames(), t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const b = await frames(), dt = (performance.now() - t0) / 1000;
  return tiles.map((t, i) => ({ name: t.name, fps: (b[i] - a[i]) / dt }));
})`

// AllLive is a page expression (format it with the guest count): the
// dashboard shows that many tiles and every one is live.
const AllLive = `(() => { const t = [...(window.loco ? loco.tiles.values() : [])];
  return t.length === %d && t.every((x) => x.streamState === 'live'); })()`
