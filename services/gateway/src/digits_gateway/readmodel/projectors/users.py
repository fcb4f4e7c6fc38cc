"""Project account events into `users` and `tokens` (never password hashes: sign-in folds)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from digits_gateway.readmodel.live import LiveEvent
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
    change applies once (epochs count)."""
    for seq, event in items:
        match event:
            case UserCreated():
                tx.execute(
                    """insert into users values (?, ?, false, 0, ?, ?, ?) on conflict do nothing""",
                    [event.username, event.role.value, event.occurred_at, event.actor, seq],
                )
            case PasswordChanged() | UserDisabled():
                tx.execute(
                    """update users set epoch = epoch + 1, disabled = disabled or ?, seq = ?
                       where username = ? and seq < ?""",
                    [isinstance(event, UserDisabled), seq, event.username, seq],
                )
            case UserEnabled():
                tx.execute(
                    "update users set disabled = false, seq = ? where username = ? and seq < ?",
                    [seq, event.username, seq],
                )
            case RoleChanged():
                tx.execute(
                    "update users set role = ?, seq = ? where username = ? and seq < ?",
                    [event.role.value, seq, event.username, seq],
                )
            case TokenIssued():
                tx.execute(
                    "insert into tokens values (?, ?, ?, ?, ?, false) on conflict do nothing",
                    [
                        event.token_id,
                        event.username,
                        event.name,
                        event.token_hash,
                        event.occurred_at,
                    ],
                )
            case SessionEnded():
                tx.execute(
                    "insert into ended_sessions values (?, ?, ?) on conflict do nothing",
                    [event.session_id, event.username, event.occurred_at],
                )
            case TokenRevoked():
                tx.execute(
                    "update tokens set revoked = true where token_id = ? and username = ?",
                    [event.token_id, event.username],
                )
    return []
