"""Accounts and API tokens as the read model holds them (no secrets but token hashes)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import msgspec


class UserRow(msgspec.Struct, frozen=True, kw_only=True):
    """One account as listed and as the auth middleware checks it."""

    username: str
    role: str
    disabled: bool
    epoch: int
    created: datetime
    created_by: str


class TokenRow(msgspec.Struct, frozen=True, kw_only=True):
    """One API token, without its secret."""

    id: str
    name: str
    created: datetime


_USER_COLUMNS = "username, role, disabled, epoch, created, created_by"


def get_user(cur: duckdb.DuckDBPyConnection, username: str) -> UserRow | None:
    """One account, or None."""
    row = cur.execute(
        f"select {_USER_COLUMNS} from users where username = ?", [username]
    ).fetchone()
    return (
        None if row is None else UserRow(**dict(zip(_USER_COLUMNS.split(", "), row, strict=True)))
    )


def list_users(cur: duckdb.DuckDBPyConnection) -> list[UserRow]:
    """Every account, by name."""
    rows = cur.execute(f"select {_USER_COLUMNS} from users order by username").fetchall()
    return [UserRow(**dict(zip(_USER_COLUMNS.split(", "), r, strict=True))) for r in rows]


def token_user(cur: duckdb.DuckDBPyConnection, token_hash: str) -> UserRow | None:
    """The enabled account owning a live token with this hash, or None."""
    row = cur.execute(
        f"""select {", ".join("u." + c for c in _USER_COLUMNS.split(", "))}
            from tokens t join users u on u.username = t.username
            where t.token_hash = ? and not t.revoked and not u.disabled""",
        [token_hash],
    ).fetchone()
    return (
        None if row is None else UserRow(**dict(zip(_USER_COLUMNS.split(", "), row, strict=True)))
    )


def session_ended(cur: duckdb.DuckDBPyConnection, session_id: str) -> bool:
    """True once the session signed out (its cookie is then refused even if copied)."""
    row = cur.execute("select 1 from ended_sessions where session_id = ?", [session_id])
    return row.fetchone() is not None


def list_tokens(cur: duckdb.DuckDBPyConnection, username: str) -> list[TokenRow]:
    """The account's live tokens, newest first."""
    rows = cur.execute(
        """select token_id, name, created from tokens where username = ? and not revoked
           order by created desc""",
        [username],
    ).fetchall()
    return [TokenRow(id=i, name=n, created=c) for i, n, c in rows]
