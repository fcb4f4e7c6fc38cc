"""The account aggregate: state folded from its events, and pure decisions returning new events."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from digits_gateway.identity._errors import AccountConflict, AccountNotFound, TokenNotFound
from digits_proto.base import Role
from digits_proto.stamps import Stamps, stamped
from digits_proto.users import (
    PasswordChanged,
    RoleChanged,
    SessionEnded,
    SignInTokenIssued,
    SignInTokenUsed,
    TokenIssued,
    TokenRevoked,
    UserCreated,
    UserDisabled,
    UserEnabled,
    UserEvent,
)


class Token(msgspec.Struct, frozen=True, kw_only=True):
    """One API token as the aggregate knows it (the hash, never the token)."""

    token_id: str
    name: str
    token_hash: str
    created: datetime
    revoked: bool = False


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """An account's current state. `epoch` counts password changes and disables: a session
    signed in at another epoch is revoked."""

    username: str
    role: Role
    password_hash: str
    disabled: bool = False
    epoch: int = 0
    tokens: dict[str, Token] = {}
    signin_token_hash: str = ""  # the unused one-time sign-in link, if any


def evolve(state: Account | None, event: UserEvent) -> Account | None:
    """The state after one event (a pure fold step)."""
    match event:
        case UserCreated():
            return Account(
                username=event.username, role=event.role, password_hash=event.password_hash
            )
    if state is None:
        return None  # an event before its account's creation: nothing to fold into
    match event:
        case PasswordChanged():
            return msgspec.structs.replace(
                state, password_hash=event.password_hash, epoch=state.epoch + 1
            )
        case RoleChanged():
            return msgspec.structs.replace(state, role=event.role)
        case UserDisabled():
            return msgspec.structs.replace(state, disabled=True, epoch=state.epoch + 1)
        case UserEnabled():
            return msgspec.structs.replace(state, disabled=False)
        case TokenIssued():
            token = Token(
                token_id=event.token_id,
                name=event.name,
                token_hash=event.token_hash,
                created=event.occurred_at,
            )
            return msgspec.structs.replace(state, tokens={**state.tokens, token.token_id: token})
        case TokenRevoked() if event.token_id in state.tokens:
            revoked = msgspec.structs.replace(state.tokens[event.token_id], revoked=True)
            return msgspec.structs.replace(state, tokens={**state.tokens, event.token_id: revoked})
        case SignInTokenIssued():
            return msgspec.structs.replace(state, signin_token_hash=event.token_hash)
        case SignInTokenUsed():
            return msgspec.structs.replace(state, signin_token_hash="")
    return state


def fold(events: Iterable[UserEvent]) -> Account | None:
    """The account built from its whole history (None: no such account)."""
    state: Account | None = None
    for event in events:
        state = evolve(state, event)
    return state


def existing(state: Account | None, username: str) -> Account:
    """The account, or 404."""
    if state is None:
        raise AccountNotFound(f'No user "{username}"')
    return state


def create(
    state: Account | None, username: str, role: Role, password_hash: str, actor: str, at: Stamps
) -> list[UserEvent]:
    """Open an account; 409 when the name is taken."""
    if state is not None:
        raise AccountConflict("username", f'The username "{username}" is taken')
    created = UserCreated(username=username, role=role, password_hash=password_hash, actor=actor)
    return [stamped(created, at)]


def change_password(
    state: Account | None, username: str, password_hash: str, actor: str, at: Stamps
) -> list[UserEvent]:
    """A new password hash (the caller has checked the old password or is an admin)."""
    existing(state, username)
    return [
        stamped(PasswordChanged(username=username, password_hash=password_hash, actor=actor), at)
    ]


def change(
    state: Account | None,
    username: str,
    role: Role | None,
    disabled: bool | None,
    actor: str,
    at: Stamps,
) -> list[UserEvent]:
    """An admin's PATCH: role and/or disabled, only what differs; an admin cannot lock
    themselves out (demote or disable their own account)."""
    account = existing(state, username)
    if username == actor and (role not in (None, Role.ADMIN) or disabled):
        raise AccountConflict(
            "role" if role else "disabled", "You cannot demote or disable yourself"
        )
    events: list[UserEvent] = []
    if role is not None and role != account.role:
        events.append(stamped(RoleChanged(username=username, role=role, actor=actor), at))
    if disabled is True and not account.disabled:
        events.append(stamped(UserDisabled(username=username, actor=actor), at))
    if disabled is False and account.disabled:
        events.append(stamped(UserEnabled(username=username, actor=actor), at))
    return events


def issue_token(
    state: Account | None, username: str, token_id: str, name: str, token_hash: str, at: Stamps
) -> list[UserEvent]:
    """A new API token for the account's owner."""
    existing(state, username)
    issued = TokenIssued(
        username=username, token_id=token_id, name=name, token_hash=token_hash, actor=username
    )
    return [stamped(issued, at)]


def revoke_token(
    state: Account | None, username: str, token_id: str, at: Stamps
) -> list[UserEvent]:
    """Revoke one of the owner's live tokens; 404 for another's or an unknown one."""
    account = existing(state, username)
    token = account.tokens.get(token_id)
    if token is None or token.revoked:
        raise TokenNotFound("No such token")
    return [stamped(TokenRevoked(username=username, token_id=token_id, actor=username), at)]


def issue_signin_token(
    state: Account | None, username: str, token_hash: str, at: Stamps
) -> list[UserEvent]:
    """A one-time sign-in link (the system's act: no actor)."""
    existing(state, username)
    return [stamped(SignInTokenIssued(username=username, token_hash=token_hash), at)]


def end_session(
    state: Account | None, username: str, session_id: str, at: Stamps
) -> list[UserEvent]:
    """Sign one session out for good (a copy of its cookie stops working too)."""
    existing(state, username)
    return [stamped(SessionEnded(username=username, session_id=session_id, actor=username), at)]


def use_signin_token(
    state: Account | None, username: str, token_hash: str, at: Stamps
) -> list[UserEvent]:
    """Spend the one-time link; a wrong, used or missing one → 404 (as if none existed)."""
    account = existing(state, username)
    if not account.signin_token_hash or account.signin_token_hash != token_hash:
        raise TokenNotFound("This sign-in link is not valid (used already?)")
    return [stamped(SignInTokenUsed(username=username, actor=username), at)]
