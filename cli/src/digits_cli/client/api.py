"""The one HTTP client of the `digits` user verbs: `/api/v1` (and DIGITS's JSON routes) with a
Bearer token, every failure turned into a one-line message and the command line's exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from digits_cli.client.config import Login

# Exit codes (the contract): 0 done, 1 the job ended Error/Aborted, 2 usage (a bad flag,
# or a request the server refused as invalid: the message names the field), 3 the server is
# unreachable or refused us (401/403/429, connection errors, 5xx).
DONE, JOB_FAILED, USAGE, UNREACHABLE = 0, 1, 2, 3
INTERRUPTED = 130  # the shell's code for a process stopped by Ctrl-C
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class CliError(Exception):
    """A failure to report in one line, with the exit code it ends the command with."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _message(response: httpx.Response) -> str:
    """The server's own words: DIGITS's `{"error": {"message"}}` or `{"errors": {field: [..]}}`."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict):
        error, errors = body.get("error"), body.get("errors")
        if isinstance(errors, dict) and errors:
            return "; ".join(f"{field}: {' '.join(map(str, m))}" for field, m in errors.items())
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if body.get("detail"):
            return str(body["detail"])
    return str(body)[:300]


def check(response: httpx.Response) -> httpx.Response:
    """The response when it succeeded, else CliError with the server's message and the code."""
    if response.is_success or response.is_redirect:
        return response
    status = response.status_code
    what = f"{response.request.method} {response.request.url.path}"
    message = f"{what}: {status} {_message(response)}"
    if status == 401:
        raise CliError(f"{message} (log in again: digits login URL)", UNREACHABLE)
    if status in (403, 429) or status >= 500:  # refused, throttled, or the server's own fault
        raise CliError(message, UNREACHABLE)
    raise CliError(message, USAGE)


class Api:
    """An httpx client for one server and token; `get/post/...` return checked responses."""

    def __init__(self, login: Login, http: httpx.Client | None = None) -> None:
        headers = {"Accept": "application/json", "User-Agent": "digits-cli"}
        if login.token:
            headers["Authorization"] = f"Bearer {login.token}"
        self.login = login
        self.http = http or httpx.Client(base_url=login.url, headers=headers, timeout=TIMEOUT)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; CliError on a refusal or when the server cannot be reached."""
        try:
            return check(self.http.request(method, path, **kwargs))
        except httpx.TransportError as e:
            raise unreachable(self.login.url, e) from e

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET, checked."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """POST, checked."""
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        """DELETE, checked."""
        return self.request("DELETE", path, **kwargs)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON answer of one request."""
        return self.request(method, path, **kwargs).json()

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed response (SSE, downloads), checked before its body is read."""
        try:
            with self.http.stream(method, path, **kwargs) as response:
                if not response.is_success:
                    response.read()
                yield check(response)
        except httpx.TransportError as e:
            raise unreachable(self.login.url, e) from e

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()


def unreachable(url: str, error: Exception) -> CliError:
    """The one line for a server that does not answer."""
    reason = str(error) or type(error).__name__
    return CliError(f"{url} does not answer ({reason}); is `digits run` up?", UNREACHABLE)
