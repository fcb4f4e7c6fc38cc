"""The gateway's own errors: each answers its status, with the body's "type" named after it."""

from __future__ import annotations

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from digits_gateway.errors import EXCEPTION_HANDLERS, GatewayError, KeyReused
from digits_gateway.identity import AccountConflict
from digits_gateway.uploads import UploadNotFound, UploadTooLarge


class Teapot(GatewayError):
    """A status without a DIGITS name, and a subclass naming its own."""

    code = 418


class Named(GatewayError):
    code = 404
    kind = "Gone"


RAISED = {
    "not-found": UploadNotFound(),
    "too-large": UploadTooLarge("over your quota"),
    "conflict": AccountConflict("username", "taken"),
    "key-reused": KeyReused(),
    "teapot": Teapot("short and stout"),
    "named": Named("renamed"),
}


@get("/raise/{which:str}", sync_to_thread=False)
def raise_it(which: str) -> None:
    raise RAISED[which]


@pytest.mark.parametrize(
    ("which", "status", "kind"),
    [
        ("not-found", 404, "NotFound"),
        ("too-large", 413, "RequestEntityTooLarge"),
        ("conflict", 409, "Conflict"),
        ("key-reused", 422, "UnprocessableEntity"),
        ("teapot", 418, "Error"),
        ("named", 404, "Gone"),
    ],
)
def test_a_gateway_error_answers_its_status_and_kind(which: str, status: int, kind: str) -> None:
    app = Litestar([raise_it], exception_handlers=EXCEPTION_HANDLERS)
    with TestClient(app) as client:
        r = client.get(f"/raise/{which}", headers={"Accept": "application/json"})
    assert r.status_code == status
    assert r.json()["error"] == {"message": RAISED[which].message, "type": kind}
