"""The launcher waits for a gateway whose read model rebuilds while it reports progress, and
gives up on one that stalls (a small HTTP server stands in for the gateway's /health)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from digits_cli.launcher import Launcher
from digits_cli.settings import Settings

TIMEOUT = 1.0  # the launcher's ready_timeout in these tests (seconds without progress)


class FakeGateway:
    """/health: 503 with rebuild progress until `ready_after` seconds, then 200.

    `moving` False: the same progress each time (a stalled rebuild)."""

    def __init__(self, ready_after: float, moving: bool):
        self.ready_after, self.moving = ready_after, moving
        self.started = time.monotonic()
        self.polls = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.polls += 1
                ready = time.monotonic() - fake.started >= fake.ready_after
                applied = fake.polls if fake.moving else 7
                body = {
                    "ready": ready,
                    "waiting_for": [] if ready else ["the read model"],
                    "rebuilding": {}
                    if ready
                    else {"DIGITS_MODELS": {"applied": applied, "pending": 10_000 - applied}},
                }
                data = json.dumps(body).encode()
                self.send_response(200 if ready else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def gateways() -> Iterator[list[FakeGateway]]:
    made: list[FakeGateway] = []
    yield made
    for g in made:
        g.server.shutdown()
        g.server.server_close()


def _launcher(tmp_path: Path, port: int, lines: list[str]) -> Launcher:
    settings = Settings(data_dir=str(tmp_path / "data"), port=port, ready_timeout=TIMEOUT)
    return Launcher(
        settings,
        echo=lambda *a, **_: lines.append(" ".join(map(str, a))),
        modules={"gateway": "unused"},
    )


def test_a_rebuild_that_makes_progress_is_waited_for_past_the_timeout(
    tmp_path: Path, gateways: list[FakeGateway]
) -> None:
    gateway = FakeGateway(ready_after=4 * TIMEOUT, moving=True)
    gateways.append(gateway)
    lines: list[str] = []
    started = time.monotonic()
    assert _launcher(tmp_path, gateway.port, lines)._wait_ready(), lines
    assert time.monotonic() - started >= 4 * TIMEOUT
    assert any("rebuilding" in line for line in lines), lines


def test_a_stalled_rebuild_is_given_up_on(tmp_path: Path, gateways: list[FakeGateway]) -> None:
    gateway = FakeGateway(ready_after=3600, moving=False)
    gateways.append(gateway)
    lines: list[str] = []
    started = time.monotonic()
    assert not _launcher(tmp_path, gateway.port, lines)._wait_ready()
    waited = time.monotonic() - started
    assert TIMEOUT <= waited < 10 * TIMEOUT, waited
    assert any("without progress" in line and "gateway" in line for line in lines), lines
