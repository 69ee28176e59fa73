// ferlab's service worker: the page, LiteRT.js and the models stay usable with the network cut.
// Network first (a server's newer model or page wins whenever it answers), the cached copy when it does
// not. Every GET of this origin is kept as it passes, except the server-mode channels (/ws, POST uploads);
// the page fetches the runtime and both models as soon as it loads and sends the worker what it loaded
// before the worker took over, so one visit is enough.
const CACHE = "ferlab-v1";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

// What the page loaded before this worker controlled it (the page itself, its scripts, the runtime, the
// models): the page sends the list, this keeps a copy of each.
self.addEventListener("message", (event) => {
  const urls = (event.data && event.data.cache) || [];
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await Promise.all(urls.filter((u) => new URL(u).origin === self.location.origin).map(async (u) => {
      if (await cache.match(u)) return;
      try {
        const response = await fetch(u);
        if (response.ok) await cache.put(u, response);
      } catch {
        // offline already: nothing to keep
      }
    }));
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin || url.pathname.endsWith("/ws")) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const response = await fetch(request);
      if (response.ok) await cache.put(request, response.clone());
      return response;
    } catch (err) {
      const cached = await cache.match(request, { ignoreVary: true });
      if (cached) return cached;
      throw err;
    }
  })());
});
