"""Message bases every bus message derives from, and the id/time helpers used at the edges."""

from __future__ import annotations

import enum
import re
import secrets
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import msgspec


class Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """An instruction sent to the one service that owns it (imperative name)."""


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Something that happened (past-tense name); appended to a stream, never changed."""

    event_id: str = msgspec.field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: datetime = msgspec.field(default_factory=lambda: utcnow())


class Reply(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """The answer to a command or query."""


class JobStatus(enum.StrEnum):
    """DIGITS's job statuses, used unchanged in events, DuckDB and every HTTP route."""

    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    RUNNING = "Running"
    DONE = "Done"
    ABORTED = "Aborted"
    ERROR = "Error"

    @property
    def is_running(self) -> bool:
        """True while the job may still change (DIGITS's I/W/R)."""
        return self in (JobStatus.INITIALIZED, JobStatus.WAITING, JobStatus.RUNNING)


class Role(enum.StrEnum):
    """What an account may do: viewers read, users create and change their own jobs, admins all."""

    ADMIN = "admin"
    USER = "user"
    VIEWER = "viewer"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who asks: established by the gateway (session or API token), carried in every command
    a person causes; the service owning the aggregate decides what this principal may do."""

    username: str
    role: Role = Role.VIEWER

    @property
    def is_admin(self) -> bool:
        """Admins may act on anyone's job."""
        return self.role == Role.ADMIN

    def may_change(self, owner: str) -> bool:
        """The owner rule: a user changes what they own, an admin changes anything, a viewer
        changes nothing."""
        return self.role == Role.ADMIN or (self.role == Role.USER and self.username == owner)

    @property
    def may_create(self) -> bool:
        """Viewers create nothing."""
        return self.role in (Role.ADMIN, Role.USER)


class BlobRef(msgspec.Struct, frozen=True, kw_only=True):
    """Where a blob lies in the Object Store; events carry this, never the bytes."""

    bucket: str
    name: str
    digest: str = ""
    size: int = 0


def utcnow() -> datetime:
    """Now, UTC-aware."""
    return datetime.now(UTC)


def new_job_id(now: datetime | None = None) -> str:
    """A DIGITS-style job id, `YYYYMMDD-HHMMSS-xxxx`: sortable and readable."""
    now = now or utcnow()
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


JOB_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{4}")


def is_job_id(value: str) -> bool:
    """True for an id `new_job_id` could have made: never a wildcard or a subject separator."""
    return JOB_ID.fullmatch(value) is not None


def edited(
    name: str | None, notes: str | None, old_name: str, old_notes: str
) -> tuple[str | None, str | None]:
    """DIGITS's `PUT /jobs/<id>` rule, for every kind of job: the (name, notes) that change,
    stripped, None where unchanged or not sent; ValueError for a blank name (notes may be
    cleared)."""
    name = None if name is None else name.strip()
    if name == "":
        raise ValueError("name cannot be blank")
    notes = None if notes is None else notes.strip()
    return (None if name == old_name else name), (None if notes == old_notes else notes)


MAX_TAGS = 16
MAX_TAG_LENGTH = 40


def clean_tags(tags: Iterable[str]) -> list[str]:
    """Tags as a job keeps them: stripped, inner whitespace collapsed, empty ones dropped,
    repeats (case-insensitive) dropped, first spelling kept; ValueError when there are too
    many, one is too long or one holds a comma (the list separator in forms)."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in tags:
        tag = " ".join(str(raw).split())
        if not tag or tag.casefold() in seen:
            continue
        if "," in tag:
            raise ValueError(f"a tag cannot hold a comma: {tag!r}")
        if len(tag) > MAX_TAG_LENGTH:
            raise ValueError(f"a tag is at most {MAX_TAG_LENGTH} characters: {tag[:20]!r}…")
        seen.add(tag.casefold())
        out.append(tag)
    if len(out) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    return out


def edited_tags(tags: Iterable[str] | None, old_tags: Iterable[str]) -> list[str] | None:
    """The job's new tags (cleaned, see clean_tags), None when unchanged or not sent;
    ValueError as clean_tags."""
    if tags is None:
        return None
    new = clean_tags(tags)
    return None if new == list(old_tags) else new
