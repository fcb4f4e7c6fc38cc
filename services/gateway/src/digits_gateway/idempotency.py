"""`Idempotency-Key`: read it, fingerprint the request, find the first answer of a retried create.

A client (or the web UI's hidden `idempotency_key` field) names a command with a key of its own;
a retry under the same key returns the first answer instead of making a second job. Keys are
scoped to the principal. The record is the job's created event (projected into the read
model), so it outlives a gateway restart; the owning service also deduplicates concurrent
retries through JetStream (see `digits_proto.runtime._idempotency`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from digits_gateway.errors import KeyReused
from digits_gateway.forms import FormErrors
from digits_gateway.readmodel import queries
from digits_gateway.readmodel.db import ReadModel
from digits_gateway.readmodel.queries._idempotency import PART
from digits_proto.base import JobStatus, Principal
from digits_proto.replies import Accepted

HEADER = "Idempotency-Key"
FIELD = "idempotency_key"  # the hidden form field the web UI sends
MAX_LENGTH = 255
PRINTABLE = re.compile(r"[\x20-\x7e]+")
# Not part of what a request asks: the key itself, the CSRF token, the (ignored) username.
UNASKED = frozenset({FIELD, "_csrf_token", "username"})


class Keyed(msgspec.Struct, frozen=True, kw_only=True):
    """A command's key and the fingerprint of the request that carried it."""

    key: str
    digest: str

    def part(self, index: int) -> str:
        """The stored key of a sweep's combination `index` (the first is the key itself)."""
        return self.key if index == 0 else f"{self.key}{PART}{index}"


def read_key(headers: Mapping[str, str], values: Mapping[str, Any] | None = None) -> str | None:
    """The client's key: the header, else the form field; None when neither is sent.
    A key is 1–255 printable ASCII characters: otherwise a 400 naming where it came from."""
    name, value = HEADER, headers.get(HEADER)
    if value is None:
        name, value = FIELD, (values or {}).get(FIELD)
        if value is None or value == "":
            return None
    if not isinstance(value, str) or not value.strip():
        raise FormErrors({name: ["must be a non-blank string"]})
    if len(value) > MAX_LENGTH:
        raise FormErrors({name: [f"must be at most {MAX_LENGTH} characters (got {len(value)})"]})
    if not PRINTABLE.fullmatch(value):
        raise FormErrors({name: ["must be printable ASCII characters only"]})
    return value


def keyed(
    key: str | None,
    action: str,
    values: Mapping[str, Any],
    files: Mapping[str, Any] | None = None,
) -> Keyed | None:
    """The key with the fingerprint of what the request asks (`action`, its fields and its
    uploads' names and sizes); None without a key."""
    if key is None:
        return None
    fields = sorted((k, _text(v)) for k, v in values.items() if k not in UNASKED)
    uploads = sorted(
        (name, upload.filename, _size(upload))
        for name, upload in (files or {}).items()
        if upload is not None and getattr(upload, "filename", "")
    )
    body = msgspec.json.encode([action, fields, uploads])
    return Keyed(key=key, digest=hashlib.sha256(body).hexdigest())


def first_answers(
    db: ReadModel, user: Principal, keyed: Keyed, count: int = 1
) -> list[Accepted | None] | None:
    """What the first request under this key created, one entry per command (None where that
    command was not created yet); None when nothing was; 422 when the key was used for another
    request."""
    with db.cursor() as cur:
        found = queries.created_under_key(cur, user.username, keyed.key)
    if not found:
        return None
    if any(digest != keyed.digest for _, _, digest in found.values()) or len(found) > count:
        raise KeyReused()
    answers: list[Accepted | None] = []
    for index in range(count):
        row = found.get(keyed.part(index))
        answers.append(
            None if row is None else Accepted(id=row[0], name=row[1], status=JobStatus.INITIALIZED)
        )
    return answers


def used_for_a_create(db: ReadModel, user: Principal, key: str) -> None:
    """An abort or delete under a key that created a job is another request: 422."""
    with db.cursor() as cur:
        if queries.created_under_key(cur, user.username, key):
            raise KeyReused()


def _text(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | list | dict) else str(value)


def _size(upload: Any) -> int:
    """An upload's size (already spooled by the form parser)."""
    file = upload.file
    position = file.tell()
    file.seek(0, 2)
    size = file.tell()
    file.seek(position)
    return int(size)


def from_params(request: Any, params: Any, action: str) -> Keyed | None:
    """A DIGITS route's key (header or hidden form field) with its request's fingerprint."""
    return keyed(read_key(request.headers, params.values), action, params.values, params.files)
