"""The account aggregate without NATS: given its events, when a change is decided, then events."""

from __future__ import annotations

import time

import pytest

from digits_gateway.identity import _domain as domain
from digits_gateway.identity._errors import AccountConflict, AccountNotFound, TokenNotFound
from digits_gateway.identity._secrets import hash_password, token_hash, verify_password
from digits_gateway.identity._session import session_claims
from digits_gateway.identity._throttle import LoginThrottle
from digits_proto import codec
from digits_proto.base import Role
from digits_proto.stamps import fixed
from digits_proto.users import (
    PasswordChanged,
    RoleChanged,
    SignInTokenIssued,
    SignInTokenUsed,
    TokenIssued,
    TokenRevoked,
    UserCreated,
    UserDisabled,
    UserEnabled,
)

ALICE = [UserCreated(username="alice", role=Role.USER, password_hash="h0", actor="admin")]


def test_fold_counts_password_changes_and_disables_in_the_epoch() -> None:
    """A session's epoch goes stale on a password change and on a disable, not on enable."""
    state = domain.fold(
        [
            *ALICE,
            PasswordChanged(username="alice", password_hash="h1", actor="alice"),
            UserDisabled(username="alice", actor="admin"),
            UserEnabled(username="alice", actor="admin"),
            RoleChanged(username="alice", role=Role.VIEWER, actor="admin"),
        ]
    )
    assert state is not None
    assert (state.epoch, state.disabled, state.role, state.password_hash) == (
        2,
        False,
        Role.VIEWER,
        "h1",
    )


def test_create_refuses_a_taken_name() -> None:
    """A second UserCreated for the same name is a 409 naming the username."""
    with pytest.raises(AccountConflict) as caught:
        domain.create(domain.fold(ALICE), "alice", Role.USER, "h", "admin", at=fixed())
    assert caught.value.field == "username"


def test_change_emits_only_what_differs_and_an_admin_cannot_demote_themselves() -> None:
    """PATCH role=user (unchanged), disabled=true gives one UserDisabled; self-demotion is 409."""
    events = domain.change(domain.fold(ALICE), "alice", Role.USER, True, "admin", at=fixed())
    assert [type(e) for e in events] == [UserDisabled]
    admin = domain.fold([UserCreated(username="admin", role=Role.ADMIN, password_hash="h")])
    with pytest.raises(AccountConflict):
        domain.change(admin, "admin", Role.USER, None, "admin", at=fixed())
    with pytest.raises(AccountNotFound):
        domain.change(None, "nobody", Role.USER, None, "admin", at=fixed())


def test_tokens_issue_and_revoke_once() -> None:
    """A revoked token cannot be revoked again; another account's id is unknown (404)."""
    issued = TokenIssued(username="alice", token_id="t1", name="ci", token_hash="x", actor="alice")
    state = domain.fold([*ALICE, issued])
    assert [type(e) for e in domain.revoke_token(state, "alice", "t1", at=fixed())] == [
        TokenRevoked
    ]
    revoked = domain.fold([*ALICE, issued, TokenRevoked(username="alice", token_id="t1")])
    with pytest.raises(TokenNotFound):
        domain.revoke_token(revoked, "alice", "t1", at=fixed())
    with pytest.raises(TokenNotFound):
        domain.revoke_token(state, "alice", "t2", at=fixed())


def test_signin_token_works_once() -> None:
    """The one-time link: the right hash spends it, then nothing works."""
    issued = [*ALICE, SignInTokenIssued(username="alice", token_hash=token_hash("secret"))]
    with pytest.raises(TokenNotFound):
        domain.use_signin_token(domain.fold(issued), "alice", token_hash("wrong"), at=fixed())
    events = domain.use_signin_token(domain.fold(issued), "alice", token_hash("secret"), at=fixed())
    assert [type(e) for e in events] == [SignInTokenUsed]
    with pytest.raises(TokenNotFound):
        domain.use_signin_token(
            domain.fold([*issued, *events]), "alice", token_hash("secret"), at=fixed()
        )


def test_user_events_round_trip_through_the_codec() -> None:
    """Every account event decodes as itself from the users decoder."""
    for event in [*ALICE, SignInTokenUsed(username="alice")]:
        assert codec.user_events.decode(codec.encode(event)) == event


async def test_password_hashes_are_argon2_and_verify() -> None:
    """argon2id hashes; a wrong password and an unknown user (no hash) both fail."""
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert await verify_password(hashed, "correct horse")
    assert not await verify_password(hashed, "wrong")
    assert not await verify_password(None, "correct horse")


def test_throttle_doubles_per_name_and_per_address_up_to_the_cap() -> None:
    """Three failures → 0.8 s for that name from anywhere and for that address on any name."""
    throttle = LoginThrottle(base=0.1, cap=5.0)
    assert throttle.delay("alice", "10.0.0.1") == 0
    for _ in range(3):
        throttle.failed("alice", "10.0.0.1")
    assert throttle.delay("alice", "10.9.9.9") == pytest.approx(0.8)
    assert throttle.delay("bob", "10.0.0.1") == pytest.approx(0.8)
    assert throttle.delay("bob", "10.9.9.9") == 0
    for _ in range(10):
        throttle.failed("alice", "10.0.0.1")
    assert throttle.delay("alice", "x") == 5.0
    throttle.succeeded("alice")
    assert throttle.delay("alice", "x") == 0


def test_a_session_past_its_lifetime_or_malformed_is_no_session() -> None:
    """The cookie's claims count only while `t` is within the lifetime and all are well typed."""
    now = int(time.time())
    ok = {"u": "alice", "e": 2, "t": now - 10, "s": "ab12"}
    assert session_claims(ok, 3600) == ("alice", 2, "ab12")
    assert session_claims({**ok, "t": now - 7200}, 3600) is None
    assert session_claims({**ok, "e": "2"}, 3600) is None
    assert session_claims({k: v for k, v in ok.items() if k != "s"}, 3600) is None
    assert session_claims({"username": "alice"}, 3600) is None
    assert session_claims(None, 3600) is None


def test_an_account_decision_with_a_fixed_clock_is_the_same_every_run() -> None:
    """Pure: the same command on the same state gives equal events, ids and times included."""

    def decide() -> list:
        state = domain.fold(domain.create(None, "bob", Role.USER, "h", "admin", fixed()))
        return domain.change(state, "bob", Role.ADMIN, True, "admin", fixed())

    first, second = decide(), decide()
    assert len(first) == 2 and first == second
