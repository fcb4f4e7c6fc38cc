"""The degraded banner in headless Chromium: the real gateway, a real service host whose `/ready`
turns 503, a real nats-server; the banner appears on the signed-in page and goes once the
service is ready again. Screenshots (1280 and 390 px, light and dark) from the stand-in site."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from playwright.sync_api import Page, expect

from digits_gateway.app import server
from digits_proto import subjects
from digits_proto.runtime import ServiceHost, ensure_streams
from tests.conftest import free_port, start_nats
from tests.gateway.accounts import PASSWORDS, seed_accounts
from tests.gateway.conftest import make_settings
from tests.gateway.fake_backend import FakeBackend
from tests.web import fake_site
from tests.web.fake_site import sign_in

pytestmark = pytest.mark.browser

# The banner polls every 5 s; the gateway caches the summary 2 s, a service its stream check 1 s.
BANNER_MS = 20_000
NOT_READY = "draining: 2 jobs finishing"


class LiveSystem:
    """nats-server, the fake backend services, a real trainer host and the real gateway, all
    on one event loop in a thread (Playwright's sync API holds the test's own thread)."""

    def __init__(self, root: Path):
        self.root = root
        self.paused: list[str] = []  # the trainer's readiness check reads it
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.proc, self.nats_url = start_nats(root / "nats")
        self.url = ""
        self._parts: list[Any] = []

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        nc = await nats.connect(self.nats_url)
        js = nc.jetstream()
        await ensure_streams(js)
        await seed_accounts(js)
        backend = FakeBackend(nc, js)  # every service's NATS discovery and commands
        await backend.start()
        trainer = ServiceHost(subjects.SERVICE_TRAINER, self.nats_url, 0, data_dir=self.root)
        await trainer.start()
        trainer.add_readiness_check(lambda: self.paused[0] if self.paused else None)
        trainer.mark_ready()
        port = free_port()
        settings = make_settings(self.nats_url, self.root, port=port)
        data = Path(settings.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        # What the launcher writes: where each service's HTTP app answers.
        address = f"http://127.0.0.1:{trainer.bound_port}"
        (data / "services.json").write_text(json.dumps({"trainer": address}))
        srv = server(settings)
        serving = asyncio.create_task(srv.serve())
        self._parts = [nc, backend, trainer, srv, serving]
        self.url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=self.url) as probe, asyncio.timeout(30):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get("/health")).status_code == 200:
                        return
                await asyncio.sleep(0.1)

    async def _stop(self) -> None:
        if not self._parts:
            return
        nc, backend, trainer, srv, serving = self._parts
        srv.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 10)
        await trainer.close()
        await backend.stop()
        await nc.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveSystem]:
    system = LiveSystem(tmp_path)
    try:
        system.start()
        yield system
    finally:
        system.stop()


def test_a_service_not_ready_shows_the_banner_until_it_is_ready_again(
    page: Page, live: LiveSystem
) -> None:
    page.goto(f"{live.url}/login?next=/cluster")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORDS["alice"])
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{live.url}/cluster")
    banner = page.locator("#degraded")
    expect(banner).to_be_hidden()

    started = time.monotonic()
    live.paused.append(NOT_READY)
    expect(banner).to_be_visible(timeout=BANNER_MS)
    appeared_s = time.monotonic() - started
    expect(banner).to_contain_text(f"Service trainer is not ready: {NOT_READY}")
    expect(banner).to_have_attribute("role", "status")

    live.paused.clear()
    expect(banner).to_be_hidden(timeout=BANNER_MS)
    print(f"banner appeared {appeared_s:.1f} s after the service turned not ready")


def test_the_banner_is_not_on_the_sign_in_page(page: Page, site: str) -> None:
    page.goto(f"{site}/test/login-error")
    expect(page.locator("#degraded")).to_have_count(0)


NOTICES = [
    {
        "text": "Training paused: the message bus has no quorum",
        "detail": "JetStream: no quorum for streams DIGITS_MODELS, DIGITS_METRICS, DIGITS_WORK, "
        "KV_digits-leases (JetStream system temporarily unavailable)",
    },
    {
        "text": "Service datasets is not ready",
        "detail": "disk: 612.4 MiB free on /var/lib/digits, under the floor of 1.0 GiB "
        "(DIGITS_MIN_FREE_DISK)",
    },
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 390])
def test_screenshots_of_the_banner(
    page: Page, site: str, screenshots: Path, scheme: str, width: int
) -> None:
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    page.set_viewport_size({"width": width, "height": 700})
    sign_in(page, site, "alice")
    fake_site.STATUS.update(ready=False, notices=NOTICES)
    try:
        page.goto(f"{site}/cluster")
        banner = page.locator("#degraded")
        expect(banner).to_be_visible()
        expect(banner.locator("li")).to_have_count(2)
        # Narrow screens: the long stream list wraps, nothing scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(screenshots / f"degraded-banner-{width}-{scheme}.png"))
    finally:
        fake_site.STATUS.update(ready=True, notices=[])
