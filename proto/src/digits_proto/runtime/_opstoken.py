"""The operator token: what guards a service's operations (cordon, drain, emptying a cache).

`DIGITS_OPS_TOKEN` if set; else `<data_dir>/ops-token`, created at the first start of any
service of that data directory (mode 0600) and read by the others. Creation is atomic: the token
is written to a private temporary file and hard-linked into place, so two services starting at
once agree on the one that landed first and nobody ever reads a half-written file.

Routes take it as `Authorization: Bearer <token>` through `ops_guard` (401 without a token, 403
with a wrong one; compared with `hmac.compare_digest`).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

TOKEN_ENV = "DIGITS_OPS_TOKEN"
TOKEN_FILE = "ops-token"
# How handlers declare it in the OpenAPI document: `@post(..., guards=[ops_guard],
# security=OPS_SECURITY)`.
OPS_SCHEME = "opsToken"
OPS_SECURITY: list[dict[str, list[str]]] = [{OPS_SCHEME: []}]


def ops_token(data_dir: str | os.PathLike[str] | None) -> str:
    """The operator token for this data directory (or `DIGITS_OPS_TOKEN`).

    Without a data directory (tests) a fresh random token is returned and nothing is written.
    """
    if env := os.environ.get(TOKEN_ENV, "").strip():
        return env
    if data_dir is None:
        return secrets.token_urlsafe(32)
    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / TOKEN_FILE
    if not path.exists():
        _create(path)
    token = path.read_text().strip()
    if not token:
        raise RuntimeError(f"{path} is empty: delete it to make a new operator token")
    return token


def _create(path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ops-token.")  # 0600 by construction
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another service won the race: keep its
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def ops_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard: the request carries this service's operator token."""
    expected: str = connection.app.state.ops_token
    scheme, _sep, given = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise NotAuthorizedException(
            "operator token required (Authorization: Bearer <data_dir/ops-token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise PermissionDeniedException("wrong operator token")
