"""Where `digits login` keeps the server's URL and the API token: owner-only, per user.

`$XDG_CONFIG_HOME/digits/config.json` (default `~/.config/digits/`), the file 0600 and its folder
0700: the token acts as the user. `DIGITS_URL` and `DIGITS_TOKEN` override the file, so a script
or CI job needs no file at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

DEFAULT_URL = "http://127.0.0.1:5000"


class Login(msgspec.Struct, kw_only=True):
    """A server and the token that acts on it as one user."""

    url: str
    token: str = ""
    token_id: str = ""
    username: str = ""


def config_path() -> Path:
    """`$XDG_CONFIG_HOME/digits/config.json`, or under `~/.config` when the variable is unset."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "digits" / "config.json"


def load() -> Login:
    """The stored login with `DIGITS_URL` / `DIGITS_TOKEN` laid over it (no file: no token)."""
    stored = Login(url=DEFAULT_URL)
    path = config_path()
    if path.is_file():
        try:
            stored = msgspec.json.decode(path.read_bytes(), type=Login)
        except msgspec.DecodeError:
            stored = Login(url=DEFAULT_URL)  # a damaged file is as good as none: log in again
    url = os.environ.get("DIGITS_URL") or stored.url
    token = os.environ.get("DIGITS_TOKEN") or (stored.token if url == stored.url else "")
    return Login(
        url=url.rstrip("/"), token=token, token_id=stored.token_id, username=stored.username
    )


def save(login: Login) -> Path:
    """Write the login owner-only: the folder 0700, the file 0600 from its first byte."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)  # an older file keeps its mode through O_TRUNC
        out.write(msgspec.json.encode(login))
    return path


def forget() -> bool:
    """Delete the stored login; False when there was none."""
    path = config_path()
    if not path.exists():
        return False
    path.unlink()
    return True
