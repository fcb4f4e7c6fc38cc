"""HTTP bodies of the session, token and user routes (strict: unknown fields are a 400)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from digits_proto.base import Role

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Secret = Annotated[str, msgspec.Meta(max_length=1024)]


class SignIn(msgspec.Struct, forbid_unknown_fields=True):
    """POST /api/v1/session."""

    username: Name
    password: Secret


class SessionInfo(msgspec.Struct):
    """Who is signed in."""

    username: str
    role: Role


class TokenCreate(msgspec.Struct, forbid_unknown_fields=True):
    """POST /api/v1/tokens: a label for the token."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class TokenCreated(msgspec.Struct):
    """The new token: `token` is shown this once and never again."""

    id: str
    name: str
    token: str


class TokenInfo(msgspec.Struct):
    """A token as listed (no secret)."""

    id: str
    name: str
    created: datetime


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    """POST /api/v1/users (admin)."""

    username: Name
    password: Secret
    role: Role = Role.USER


class UserPatch(msgspec.Struct, forbid_unknown_fields=True):
    """PATCH /api/v1/users/{username} (admin): only what is sent changes."""

    role: Role | None = None
    disabled: bool | None = None
    password: Secret | None = None  # a new password for someone who forgot theirs


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    """PUT /api/v1/users/me/password."""

    old: Secret
    new: Secret


class UserInfo(msgspec.Struct):
    """An account as listed to admins."""

    username: str
    role: str
    disabled: bool
    created: datetime
    created_by: str
