// Every signed-in page: a banner while the system is degraded ("Training paused: the message
// bus has no quorum", "Service trainer is not ready: …"), from GET /api/v1/status every few
// seconds (the gateway caches it ~2 s); gone once everything is ready again.

const POLL_MS = 5000;
const banner = document.getElementById("degraded");
let shown = "";  // what the banner says now: re-rendered (and re-announced) only on change
let timer = null;

function render(notices) {
  const key = JSON.stringify(notices);
  if (key === shown) return;
  shown = key;
  const list = banner.querySelector("ul");
  list.replaceChildren(
    ...notices.map(({ text, detail }) => {
      const item = document.createElement("li");
      const headline = document.createElement("strong");
      headline.textContent = text;
      item.append(headline);
      if (detail) {
        const why = document.createElement("span");
        why.className = "degraded-detail";
        why.textContent = detail;
        item.append(": ", why);
      }
      return item;
    }),
  );
  banner.hidden = notices.length === 0;
}

async function poll() {
  clearTimeout(timer);
  try {
    const r = await fetch("/api/v1/status", { headers: { Accept: "application/json" } });
    if (r.status === 401) return;  // signed out meanwhile: the page's own links say so
    if (r.ok) {
      const body = await r.json();
      render(body.ready ? [] : body.notices || []);
    }
  } catch {
    // The gateway itself does not answer: the live indicator ("Reconnecting…") says so.
  }
  if (!document.hidden) timer = setTimeout(poll, POLL_MS);
}

if (banner) {
  // A hidden tab does not poll; it asks at once when it is looked at again.
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });
  poll();
}
