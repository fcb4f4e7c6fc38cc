"""Account errors, each an HTTP status the gateway's one exception handler answers with."""

from __future__ import annotations

from digits_gateway.errors import GatewayError


class AccountNotFound(GatewayError):
    """No such account."""

    code = 404


class TokenNotFound(GatewayError):
    """No such (live) token of this account, or a spent sign-in link."""

    code = 404


class AccountConflict(GatewayError):
    """The change clashes with the account's state (name taken, demoting oneself)."""

    code = 409

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class SignInFailed(GatewayError):
    """Wrong username/password pair: one message whether the user exists or not."""

    code = 401

    def __init__(self) -> None:
        super().__init__("Wrong username or password")
