"""`digits login URL` and `digits logout`: an API token created through the accounts API and
kept owner-only, so no later verb ever asks for a password."""

from __future__ import annotations

import argparse
import getpass
import socket
import sys

import httpx

from digits_cli.client import config
from digits_cli.client.api import DONE, TIMEOUT, USAGE, CliError, check, unreachable
from digits_cli.commands._common import Context, json_flag

SAFE = ("GET", "HEAD", "OPTIONS")


def _password(args: argparse.Namespace) -> str:
    """`--password-stdin` reads one line; else a prompt that does not echo."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(f"Password for {args.username}: ")


def create_token(url: str, username: str, password: str) -> config.Login:
    """Sign in (a session cookie), create a token with it, sign the session out again."""
    with httpx.Client(base_url=url, timeout=TIMEOUT) as http:

        def csrf(request: httpx.Request) -> None:
            # The session's writes need the CSRF cookie echoed as a header, as the web UI does.
            token = http.cookies.get("csrftoken")
            if token and request.method not in SAFE:
                request.headers["x-csrftoken"] = token

        http.event_hooks["request"].append(csrf)
        try:
            check(http.post("/api/v1/session", json={"username": username, "password": password}))
            check(http.get("/api/v1/session"))
            name = f"digits-cli@{socket.gethostname()}"
            created = check(http.post("/api/v1/tokens", json={"name": name})).json()
            http.delete("/api/v1/session")
        except httpx.TransportError as e:
            raise unreachable(url, e) from e
    return config.Login(url=url, token=created["token"], token_id=created["id"], username=username)


def login(ctx: Context, args: argparse.Namespace) -> int:
    """Create a token for this user on URL and store it."""
    url = args.url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise CliError(f"URL must start with http:// or https://, not {args.url!r}", USAGE)
    username = args.username or input("Username: ")
    stored = create_token(url, username, _password(args))
    path = config.save(stored)
    if ctx.as_json:
        ctx.print_json({"url": url, "username": username, "token_id": stored.token_id})
    else:
        ctx.say(f"Logged in to {url} as {username} (token kept in {path})")
    return DONE


def logout(ctx: Context, args: argparse.Namespace) -> int:
    """Revoke the stored token on the server (when it answers) and forget it."""
    stored = config.load()
    revoked = False
    if stored.token and stored.token_id:
        try:
            ctx.api.delete(f"/api/v1/tokens/{stored.token_id}")
            revoked = True
        except CliError as e:
            ctx.err.print(f"digits: the token was not revoked on the server: {e}", markup=False)
    forgotten = config.forget()
    if ctx.as_json:
        ctx.print_json({"revoked": revoked, "forgotten": forgotten})
    else:
        ctx.say("Logged out." if forgotten else "Not logged in.")
    return DONE


def whoami(ctx: Context, args: argparse.Namespace) -> int:
    """Who the stored token (or DIGITS_TOKEN) acts as, on which server."""
    me = ctx.api.json("GET", "/api/v1/session")
    if ctx.as_json:
        ctx.print_json({"url": ctx.api.login.url, **me})
    else:
        ctx.say(f"{me['username']} ({me['role']}) on {ctx.api.login.url}")
    return DONE


def register(verbs: argparse._SubParsersAction) -> None:
    """`login`, `logout`, `whoami`."""
    parser = verbs.add_parser(
        "login",
        parents=[json_flag()],
        help="sign in to a DIGITS server and keep an API token for the other verbs",
        description="Creates an API token through the accounts API and keeps {url, token} in "
        "$XDG_CONFIG_HOME/digits/config.json (default ~/.config/digits/), owner-only. "
        "DIGITS_URL and DIGITS_TOKEN override it.",
    )
    parser.add_argument("url", help="the server, e.g. http://127.0.0.1:5000")
    parser.add_argument("--username", "-u", help="asked when left out")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    parser.set_defaults(verb_fn=login)
    parser = verbs.add_parser(
        "logout", parents=[json_flag()], help="revoke the stored token and forget it"
    )
    parser.set_defaults(verb_fn=logout)
    parser = verbs.add_parser("whoami", parents=[json_flag()], help="who the stored token is")
    parser.set_defaults(verb_fn=whoami)
