"""`/api/v1/session`, `/api/v1/tokens`, `/api/v1/users`: sign-in for scripts, API tokens, and
the accounts an admin manages. The gateway owns this aggregate, so the rules live here."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.status_codes import HTTP_204_NO_CONTENT

from digits_gateway.controllers._account_schemas import (
    PasswordChange,
    SessionInfo,
    SignIn,
    TokenCreate,
    TokenCreated,
    TokenInfo,
    UserCreate,
    UserInfo,
    UserPatch,
)
from digits_gateway.controllers._common import accounts, client_address, require_user
from digits_gateway.deps import Gateway
from digits_gateway.errors import Denied
from digits_gateway.identity import AccountNotFound, sign_out, start_session
from digits_gateway.readmodel import queries
from digits_proto.base import Role


class SessionApi(Controller):
    """A session cookie for scripts that prefer one to a token."""

    path = "/api/v1/session"
    tags = ["accounts"]

    @post("/", status_code=200)
    async def sign_in(
        self, request: Request[Any, Any, Any], gw: Gateway, data: SignIn
    ) -> SessionInfo:
        """Right pair → 200 and the cookie; wrong pair or unknown user → the same 401."""
        account = await accounts(gw).sign_in(data.username, data.password, client_address(request))
        start_session(request, account)
        return SessionInfo(username=account.username, role=account.role)

    @get("/", sync_to_thread=False)
    def who_am_i(self, request: Request[Any, Any, Any]) -> SessionInfo:
        """The signed-in principal (session or token)."""
        user = require_user(request)
        return SessionInfo(username=user.username, role=user.role)

    @delete("/", status_code=HTTP_204_NO_CONTENT)
    async def sign_out(self, request: Request[Any, Any, Any], gw: Gateway) -> None:
        """End the session for good and clear its cookie."""
        await sign_out(request, accounts(gw))


class TokenApi(Controller):
    """The caller's own API tokens (`Authorization: Bearer <token>` on any route)."""

    path = "/api/v1/tokens"
    tags = ["accounts"]

    @post("/", status_code=201)
    async def create_token(
        self, request: Request[Any, Any, Any], gw: Gateway, data: TokenCreate
    ) -> TokenCreated:
        """A new token, shown once."""
        token_id, token = await accounts(gw).issue_token(require_user(request), data.name)
        return TokenCreated(id=token_id, name=data.name, token=token)

    @get("/", sync_to_thread=False)
    def list_tokens(self, request: Request[Any, Any, Any], gw: Gateway) -> list[TokenInfo]:
        """The caller's live tokens, without secrets."""
        user = require_user(request)
        with gw.db.cursor() as cur:
            rows = queries.list_tokens(cur, user.username)
        return [TokenInfo(id=r.id, name=r.name, created=r.created) for r in rows]

    @delete("/{token_id:str}", status_code=HTTP_204_NO_CONTENT)
    async def revoke_token(
        self, request: Request[Any, Any, Any], gw: Gateway, token_id: str
    ) -> None:
        """Revoke one of the caller's tokens (404 for anyone else's)."""
        await accounts(gw).revoke_token(require_user(request), token_id)


def _info(row: queries.UserRow) -> UserInfo:
    return UserInfo(
        username=row.username,
        role=row.role,
        disabled=row.disabled,
        created=row.created,
        created_by=row.created_by,
    )


class UserApi(Controller):
    """Accounts: admins open, list and change them; everyone changes their own password."""

    path = "/api/v1/users"
    tags = ["accounts"]

    @post("/", status_code=201)
    async def create_user(
        self, request: Request[Any, Any, Any], gw: Gateway, data: UserCreate
    ) -> UserInfo:
        """Open an account (admin): 400 names the field, 409 when the name is taken."""
        await accounts(gw).create_user(
            require_user(request), data.username, data.password, data.role
        )
        return self._get(gw, data.username)

    @get("/", sync_to_thread=False)
    def list_users(self, request: Request[Any, Any, Any], gw: Gateway) -> list[UserInfo]:
        """Every account (admin)."""
        if not require_user(request).is_admin:
            raise Denied("Only an admin may list accounts")
        with gw.db.cursor() as cur:
            return [_info(r) for r in queries.list_users(cur)]

    @patch("/{username:str}")
    async def update_user(
        self, request: Request[Any, Any, Any], gw: Gateway, username: str, data: UserPatch
    ) -> UserInfo:
        """Change an account's role, disable it or set its password (admin)."""
        role = None if data.role is None else Role(data.role)
        await accounts(gw).update_user(
            require_user(request), username, role, data.disabled, data.password
        )
        return self._get(gw, username)

    @put("/me/password", status_code=HTTP_204_NO_CONTENT)
    async def change_password(
        self, request: Request[Any, Any, Any], gw: Gateway, data: PasswordChange
    ) -> Response[None]:
        """A new password: every session of the account ends, this one is renewed."""
        user = require_user(request)
        await accounts(gw).change_password(user, data.old, data.new)
        if request.scope.get("auth") == "session":
            account, _ = await accounts(gw).store.load(user.username)
            if account is not None:
                start_session(request, account)
        return Response(None, status_code=HTTP_204_NO_CONTENT)

    @staticmethod
    def _get(gw: Gateway, username: str) -> UserInfo:
        with gw.db.cursor() as cur:
            row = queries.get_user(cur, username)
        if row is None:
            raise AccountNotFound(f'No user "{username}"')
        return _info(row)
