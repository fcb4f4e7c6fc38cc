"""Identity at the edge: accounts (an event-sourced aggregate), sessions, API tokens, sign-in."""

from digits_gateway.identity._accounts import ADMIN, Accounts
from digits_gateway.identity._domain import Account
from digits_gateway.identity._errors import (
    AccountConflict,
    AccountNotFound,
    SignInFailed,
    TokenNotFound,
)
from digits_gateway.identity._middleware import AuthMiddleware, middleware
from digits_gateway.identity._session import (
    SESSION_COOKIE,
    end_session,
    session_config,
    sign_out,
    start_session,
)
from digits_gateway.identity._store import AccountStore

__all__ = [
    "ADMIN",
    "SESSION_COOKIE",
    "Account",
    "AccountConflict",
    "AccountNotFound",
    "AccountStore",
    "Accounts",
    "AuthMiddleware",
    "SignInFailed",
    "TokenNotFound",
    "end_session",
    "middleware",
    "session_config",
    "sign_out",
    "start_session",
]
