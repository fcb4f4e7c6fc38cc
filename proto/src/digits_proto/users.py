"""The users context's events: accounts, passwords, roles and API tokens (owned by the gateway).

Identity is established at the edge, so the gateway alone appends these, one subject per account
(`subjects.user_events`). Secrets never travel: passwords as argon2 hashes, tokens as sha256.
"""

from __future__ import annotations

from digits_proto.base import Event, Role


class UserEvent(Event, frozen=True, kw_only=True):
    """Base of every account event: whose account, and who caused it."""

    username: str
    actor: str = ""  # the account that caused it ("" for the system, e.g. the first admin)


class UserCreated(UserEvent, frozen=True, kw_only=True, tag="users.UserCreated"):
    """An account was opened."""

    role: Role
    password_hash: str  # argon2 (PHC string)


class PasswordChanged(UserEvent, frozen=True, kw_only=True, tag="users.PasswordChanged"):
    """A new password: every session signed in before it is revoked."""

    password_hash: str


class RoleChanged(UserEvent, frozen=True, kw_only=True, tag="users.RoleChanged"):
    """An admin gave the account another role."""

    role: Role


class UserDisabled(UserEvent, frozen=True, kw_only=True, tag="users.UserDisabled"):
    """The account may no longer sign in; its sessions and tokens stop working."""


class UserEnabled(UserEvent, frozen=True, kw_only=True, tag="users.UserEnabled"):
    """A disabled account may sign in again (old sessions stay revoked)."""


class TokenIssued(UserEvent, frozen=True, kw_only=True, tag="users.TokenIssued"):
    """An API token for scripts (the token itself was shown once, never stored)."""

    token_id: str
    name: str
    token_hash: str  # sha256 hex of the token


class TokenRevoked(UserEvent, frozen=True, kw_only=True, tag="users.TokenRevoked"):
    """An API token stops working."""

    token_id: str


class SignInTokenIssued(UserEvent, frozen=True, kw_only=True, tag="users.SignInTokenIssued"):
    """A one-time sign-in link for the first admin (no password was configured)."""

    token_hash: str  # sha256 hex


class SignInTokenUsed(UserEvent, frozen=True, kw_only=True, tag="users.SignInTokenUsed"):
    """The one-time sign-in link was used: it never works again."""


class SessionEnded(UserEvent, frozen=True, kw_only=True, tag="users.SessionEnded"):
    """One signed-in session was signed out: its cookie, even if copied, no longer works."""

    session_id: str


UserEvents = (
    UserCreated
    | PasswordChanged
    | RoleChanged
    | UserDisabled
    | UserEnabled
    | TokenIssued
    | TokenRevoked
    | SignInTokenIssued
    | SignInTokenUsed
    | SessionEnded
)
