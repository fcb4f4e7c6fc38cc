// One EventSource per page, typed JSON handlers, and the "live / reconnecting…" indicator.

const indicator = () => document.getElementById("live-state");

function show(state, text) {
  const node = indicator();
  if (!node) return;
  node.hidden = false;
  node.dataset.state = state;
  node.textContent = text;
}

/**
 * Connect to an SSE URL. handlers maps event type → fn(payload, event).
 * The browser reconnects by itself (sending Last-Event-ID); when it gives up
 * (CLOSED, e.g. a 503 while the gateway starts) we retry with backoff.
 */
export function connectLive(url, handlers) {
  let source = null;
  let delay = 1000;
  let timer = null;
  let stopped = false;

  function open() {
    show("connecting", "Connecting…");
    source = new EventSource(url);
    source.addEventListener("open", () => {
      delay = 1000;
      show("live", "Live");
    });
    source.addEventListener("error", () => {
      if (stopped) return;
      show("reconnecting", "Reconnecting…");
      if (source.readyState === EventSource.CLOSED) {
        timer = setTimeout(open, delay);
        delay = Math.min(delay * 2, 30_000);
      }
    });
    for (const [type, handler] of Object.entries(handlers)) {
      source.addEventListener(type, (event) => {
        let payload;
        try {
          payload = JSON.parse(event.data);
        } catch {
          console.warn(`live: ignoring a ${type} event that is not JSON`);
          return;
        }
        handler(payload, event);
      });
    }
  }

  function close() {
    stopped = true;
    clearTimeout(timer);
    source?.close();
    show("closed", "Offline");
  }

  addEventListener("pagehide", () => source?.close());
  addEventListener("pageshow", (event) => {
    if (event.persisted && !stopped) open();  // back/forward cache: reopen the stream
  });
  open();
  return { close };
}
