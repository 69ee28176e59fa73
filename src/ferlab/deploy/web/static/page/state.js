// The page's one mutable state, shared by its modules (each module owns the fields it writes; see below), and
// the element lookup they all use.

export const $ = (id) => document.getElementById(id);

export const state = {
  classes: [], // modes.js: from the server's /api/health, or the static site's manifest
  limits: {}, // modes.js: the server's upload limits (none on a static site)
  smoothing: 1, // modes.js: the manifest's EMA weight for the bars (ferlab.deploy.tracking owns the number)
  running: false, // camera.js: the camera is on
  stream: null,
  mode: null, // camera.js: "ondevice" or "server" while the camera runs
  ondevice: null, // modes.js: {manifest, why, ok, engine: Promise} once the server said whether it can
  keepForOffline: null, // app.js: hands the service worker what was loaded, where there is one
  // server.js: the WebSocket and its one frame in flight
  ws: null,
  reconnectMs: 500,
  inFlight: null, // {id, sentAt, width, height, timer}
  nextId: 1,
  scheduled: false,
  // stage.js and view.js: what the live stage shows
  smoothed: null,
  fps: null,
  latency: null,
  textAt: -Infinity, // when the live readings were last written
  serverMs: null,
  lastAnswerAt: null,
  faces: [],
  frame: { width: 0, height: 0 },
};
