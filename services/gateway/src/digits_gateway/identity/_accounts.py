"""The users context's use cases: sign in, open and change accounts, API tokens, first admin."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from digits_gateway.errors import Denied
from digits_gateway.forms import FormErrors
from digits_gateway.identity import _domain as domain
from digits_gateway.identity._domain import Account
from digits_gateway.identity._errors import SignInFailed
from digits_gateway.identity._secrets import hash_password, new_token, token_hash, verify_password
from digits_gateway.identity._store import MAX_USERNAME, AccountStore
from digits_gateway.identity._throttle import LoginThrottle
from digits_gateway.params import USERNAME_RE
from digits_gateway.readmodel.runner import Projection
from digits_gateway.settings import Settings
from digits_proto import subjects
from digits_proto.base import Principal, Role
from digits_proto.stamps import live
from digits_proto.users import UserEvent

log = structlog.get_logger(__name__)

ADMIN = "admin"
MAX_PASSWORD = 1024


class Accounts:
    """Every change goes through the account's fold and an append guarded by its sequence;
    the call returns once the read model shows it (the next request's auth sees it)."""

    def __init__(self, store: AccountStore, projection: Projection, settings: Settings):
        self.store = store
        self.projection = projection
        self.settings = settings
        self.throttle = LoginThrottle(settings.login_delay_base, settings.login_delay_max)

    async def _change(
        self, username: str, decide: Callable[[Account | None], Sequence[UserEvent]]
    ) -> list[UserEvent]:
        events, seq = await self.store.update(username, decide)
        timeout = self.settings.read_your_writes_timeout
        await self.projection.wait_for(subjects.STREAM_USERS, seq, timeout)
        return events

    async def sign_in(self, username: str, password: str, address: str) -> Account:
        """The account for a right pair; SignInFailed (one message) for any wrong one, after
        a delay that grows with the recent failures of this name and this address."""
        delay = self.throttle.delay(username, address)
        if delay:
            await asyncio.sleep(delay)
        account = None
        if len(username) <= MAX_USERNAME and USERNAME_RE.match(username):
            account, _ = await self.store.load(username)
        # argon2 hashes whatever it is given: a megabyte "password" is refused unhashed.
        password = password if len(password) <= MAX_PASSWORD else ""
        usable = account if account is not None and not account.disabled else None
        ok = await verify_password(usable.password_hash if usable else None, password)
        if not ok or usable is None:
            self.throttle.failed(username, address)
            log.info("sign_in_failed", username=username, address=address, delay=delay)
            raise SignInFailed()
        self.throttle.succeeded(username)
        log.info("signed_in", username=username, address=address)
        return usable

    def check_password(self, password: str, field: str) -> None:
        """400 naming the field for a password under the minimum length or over the maximum."""
        minimum = self.settings.password_min_length
        if not minimum <= len(password) <= MAX_PASSWORD:
            raise FormErrors({field: [f"Use {minimum} to {MAX_PASSWORD} characters"]})

    async def create_user(self, actor: Principal, username: str, password: str, role: Role) -> None:
        """An admin opens an account."""
        _require_admin(actor)
        if not USERNAME_RE.match(username):
            raise FormErrors(
                {"username": ["Start with a lowercase letter, then use a-z, 0-9, '.', '_', '-'"]}
            )
        if len(username) > MAX_USERNAME:
            raise FormErrors({"username": [f"Use at most {MAX_USERNAME} characters"]})
        self.check_password(password, "password")
        password_hash = await asyncio.to_thread(hash_password, password)
        await self._change(
            username,
            lambda s: domain.create(s, username, role, password_hash, actor.username, live()),
        )

    async def update_user(
        self,
        actor: Principal,
        username: str,
        role: Role | None,
        disabled: bool | None,
        password: str | None = None,
    ) -> None:
        """An admin changes an account's role, disables/enables it, or sets a new password
        (someone who forgot theirs: every session of the account ends)."""
        _require_admin(actor)
        password_hash = ""
        if password is not None:
            self.check_password(password, "password")
            password_hash = await asyncio.to_thread(hash_password, password)

        def decide(state: Account | None) -> list[UserEvent]:
            events = domain.change(state, username, role, disabled, actor.username, live())
            if password_hash:
                events += domain.change_password(
                    state, username, password_hash, actor.username, live()
                )
            return events

        await self._change(username, decide)

    async def change_password(self, principal: Principal, old: str, new: str) -> None:
        """The owner changes their password (the old one is checked; every session ends)."""
        account, _ = await self.store.load(principal.username)
        if account is None or not await verify_password(account.password_hash, old):
            raise FormErrors({"old": ["The current password is wrong"]})
        self.check_password(new, "new")
        password_hash = await asyncio.to_thread(hash_password, new)
        name = principal.username
        await self._change(
            name,
            lambda s: domain.change_password(s, name, password_hash, principal.username, live()),
        )

    async def issue_token(self, principal: Principal, name: str) -> tuple[str, str]:
        """A new API token for the principal: (id, token); the token is never seen again."""
        token, token_id = new_token(), uuid.uuid4().hex[:16]
        digest, user = token_hash(token), principal.username
        await self._change(
            user, lambda s: domain.issue_token(s, user, token_id, name, digest, live())
        )
        return token_id, token

    async def revoke_token(self, principal: Principal, token_id: str) -> None:
        """Revoke one of the principal's tokens (404 for anyone else's)."""
        user = principal.username
        await self._change(user, lambda s: domain.revoke_token(s, user, token_id, live()))

    async def end_session(self, principal: Principal, session_id: str) -> None:
        """Record that a session signed out: its cookie is refused from now on."""
        user = principal.username
        await self._change(user, lambda s: domain.end_session(s, user, session_id, live()))

    async def use_signin_token(self, token: str) -> Account:
        """Spend the first admin's one-time sign-in link (404 when wrong or used)."""
        digest = token_hash(token)
        await self._change(ADMIN, lambda s: domain.use_signin_token(s, ADMIN, digest, live()))
        account, _ = await self.store.load(ADMIN)
        return domain.existing(account, ADMIN)

    async def ensure_admin(self) -> None:
        """First start: create `admin` with DIGITS_ADMIN_PASSWORD, or with a random password
        (kept only as a hash) and a one-time sign-in link written for the launcher. While that
        link is unused, each start issues a fresh one (the old one stops working)."""
        account, _ = await self.store.load(ADMIN)
        if account is not None and not account.signin_token_hash:
            return
        configured = self.settings.admin_password
        if account is None and configured:
            password_hash = await asyncio.to_thread(hash_password, configured)
            await self.store.update(
                ADMIN, lambda s: domain.create(s, ADMIN, Role.ADMIN, password_hash, "", live())
            )
            log.info("admin_created", password="DIGITS_ADMIN_PASSWORD")
            return
        token = new_token()
        digest = token_hash(token)
        if account is None:
            password_hash = await asyncio.to_thread(hash_password, new_token())

            def decide(state: Account | None) -> list[UserEvent]:
                created = domain.create(state, ADMIN, Role.ADMIN, password_hash, "", live())
                return [
                    *created,
                    *domain.issue_signin_token(domain.fold(created), ADMIN, digest, live()),
                ]

            await self.store.update(ADMIN, decide)
        else:
            await self.store.update(
                ADMIN, lambda s: domain.issue_signin_token(s, ADMIN, digest, live())
            )
        _write_private(self.settings.signin_token_path, token)
        log.info("admin_signin_link_written", path=str(self.settings.signin_token_path))


def _require_admin(actor: Principal) -> None:
    if not actor.is_admin:
        raise Denied("Only an admin may manage accounts")


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (0600 even if it existed before)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text + "\n")
