"""The gateway's unexpected exceptions: a 500 with an error id and no detail; the traceback is
logged under that id."""

from __future__ import annotations

import re

import structlog
from litestar import Litestar, get
from litestar.testing import TestClient

from digits_gateway.errors import EXCEPTION_HANDLERS

SECRET = "/srv/digits/data/gateway.duckdb"


@get("/boom", sync_to_thread=False)
def boom() -> str:
    raise RuntimeError(f"IO Error: could not open {SECRET}")


def app() -> Litestar:
    return Litestar([boom], exception_handlers=EXCEPTION_HANDLERS)


def test_an_unexpected_exception_is_a_500_with_an_id_and_no_detail() -> None:
    """JSON clients get DIGITS's error body holding the id only; the log line has the id and
    the exception."""
    with structlog.testing.capture_logs() as logs, TestClient(app()) as client:
        response = client.get("/boom", headers={"Accept": "application/json"})
    assert response.status_code == 500
    message = response.json()["error"]["message"]
    found = re.fullmatch(r"internal error, id ([0-9a-f]{12}); see the gateway log", message)
    assert found, message
    assert SECRET not in response.text and "RuntimeError" not in response.text
    logged = [e for e in logs if e.get("error_id") == found.group(1)]
    assert len(logged) == 1 and logged[0]["event"] == "unhandled_error"
    assert isinstance(logged[0]["exc_info"], RuntimeError)
    assert SECRET in str(logged[0]["exc_info"])


def test_a_page_client_gets_the_same_id_as_plain_text() -> None:
    """Browsers get the message as text, with no detail either."""
    with TestClient(app()) as client:
        response = client.get("/boom", headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert re.fullmatch(r"internal error, id [0-9a-f]{12}; see the gateway log", response.text)
