"""Project account events into `users` and `tokens` (never password hashes: sign-in folds)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from digits_gateway.readmodel.live import LiveEvent
from digits_gateway.readmodel.projectors._rows import Table
from digits_proto.users import (
    PasswordChanged,
    RoleChanged,
    SessionEnded,
    TokenIssued,
    TokenRevoked,
    UserCreated,
    UserDisabled,
    UserEnabled,
)


def apply(tx: duckdb.DuckDBPyConnection, items: Sequence[tuple[int, Any]]) -> list[LiveEvent]:
    """Apply a batch of (stream sequence, user event); `seq` guards against replays, so each
    change applies once (epochs count). Rows are read once and written back once."""
    users = Table(tx, "users", "username")
    users.load(e.username for _, e in items)
    tokens = Table(tx, "tokens", "token_id")
    tokens.load(e.token_id for _, e in items if isinstance(e, TokenIssued | TokenRevoked))
    sessions = Table(tx, "ended_sessions", "session_id")
    sessions.load(e.session_id for _, e in items if isinstance(e, SessionEnded))
    for seq, event in items:
        user = users.get(event.username)
        # The row, when this event is newer than the last change applied to it.
        newer = user if user is not None and user["seq"] < seq else None
        match event:
            case UserCreated() if user is None:
                users.put(
                    {
                        "username": event.username,
                        "role": event.role.value,
                        "disabled": False,
                        "epoch": 0,
                        "created": event.occurred_at,
                        "created_by": event.actor,
                        "seq": seq,
                    }
                )
            case PasswordChanged() | UserDisabled() if newer:
                disabled = newer["disabled"] or isinstance(event, UserDisabled)
                users.put({**newer, "epoch": newer["epoch"] + 1, "disabled": disabled, "seq": seq})
            case UserEnabled() if newer:
                users.put({**newer, "disabled": False, "seq": seq})
            case RoleChanged() if newer:
                users.put({**newer, "role": event.role.value, "seq": seq})
            case TokenIssued() if tokens.get(event.token_id) is None:
                tokens.put(
                    {
                        "token_id": event.token_id,
                        "username": event.username,
                        "name": event.name,
                        "token_hash": event.token_hash,
                        "created": event.occurred_at,
                        "revoked": False,
                    }
                )
            case SessionEnded() if sessions.get(event.session_id) is None:
                sessions.put(
                    {
                        "session_id": event.session_id,
                        "username": event.username,
                        "ended": event.occurred_at,
                    }
                )
            case TokenRevoked():
                token = tokens.get(event.token_id)
                if token is not None and token["username"] == event.username:
                    tokens.put({**token, "revoked": True})
    for table in (users, tokens, sessions):
        table.flush()
    return []
