"""How DIGITS read a request: every parameter from the query string or the form, JSON by suffix
or Accept header, the user from a `username` field or cookie."""

from __future__ import annotations

import re
import sys
from typing import Any

from litestar import Request
from litestar.datastructures import UploadFile
from litestar.exceptions import SerializationException

USERNAME_RE = re.compile(r"^[a-z][a-z0-9._-]*$")


class GatewayRequest(Request[Any, Any, Any]):
    """litestar's Request, whose JSON decoding refuses what msgspec raises past litestar as a
    500: a body that is not UTF-8, and one nested deeper than the decoder follows. Both become
    the 400 of a malformed body (every JSON body, `data:` or read_params, is decoded here)."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except UnicodeDecodeError as e:
            bad = e.object[e.start : e.end]
            raise SerializationException(f"JSON is not UTF-8: the body holds {bad!r}") from e
        except RecursionError as e:
            limit = sys.getrecursionlimit()
            raise SerializationException(
                f"JSON nested too deeply: the limit is under {limit} levels"
            ) from e


class Params:
    """The merged text parameters and the uploaded files of one request."""

    def __init__(self, values: dict[str, Any], files: dict[str, UploadFile]):
        self.values = values
        self.files = files

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        return default if value is None else str(value)


async def read_params(request: Request[Any, Any, Any]) -> Params:
    """Query string over form (werkzeug's CombinedMultiDict order); multi-values joined by ','."""
    values: dict[str, Any] = {}
    files: dict[str, UploadFile] = {}
    ctype = request.headers.get("content-type", "")
    if request.method in ("POST", "PUT", "DELETE", "PATCH"):
        if ctype.startswith("application/json"):
            body = await request.json()
            if isinstance(body, dict):
                values.update({k: v for k, v in body.items() if v is not None})
        elif ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form()
            for key in form:
                items = form.getall(key)
                uploads = [v for v in items if isinstance(v, UploadFile)]
                if uploads:
                    files[key] = uploads[0]
                texts = [str(v) for v in items if not isinstance(v, UploadFile)]
                if texts:
                    values[key] = ",".join(texts)
    for key in request.query_params:
        values[key] = ",".join(request.query_params.getall(key))
    return Params(values, files)


def wants_json(request: Request[Any, Any, Any]) -> bool:
    """DIGITS's request_wants_json: a `.json` path, or Accept preferring JSON over HTML."""
    if request.url.path.endswith(".json") or request.url.path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "")
    return _quality(accept, "application/json") > _quality(accept, "text/html")


def _quality(accept: str, mime: str) -> float:
    best = 0.0
    major = mime.split("/")[0]
    for part in accept.split(","):
        kind, _, rest = part.strip().partition(";")
        kind = kind.strip().lower()
        if kind not in (mime, f"{major}/*", "*/*"):
            continue
        q = 1.0
        for option in rest.split(";"):
            key, _, val = option.strip().partition("=")
            if key == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        # An exact type beats a wildcard at equal quality, as werkzeug's best_match does.
        best = max(best, q + (0.001 if kind == mime else 0.0))
    return best


def username(request: Request[Any, Any, Any], params: Params | None = None) -> str | None:
    """The signed-in username (session or Bearer token), None when anonymous. DIGITS let a
    `username` field or cookie say who you are; here `params` is ignored: it never does."""
    user = request.scope.get("user")
    return getattr(user, "username", None) if user is not None else None


def strip_json(job_id: str) -> str:
    """`/datasets/<id>.json` arrives as the path parameter `<id>.json`."""
    return job_id[: -len(".json")] if job_id.endswith(".json") else job_id
