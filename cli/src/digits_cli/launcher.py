"""Start nats-server and the five services as processes, restart what dies, stop all on a signal."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from digits_cli import logfiles, nats
from digits_cli.bus import Bus, restart_due
from digits_cli.settings import Settings
from digits_cli.target import hold_store
from digits_proto.children import die_with_parent_hook
from digits_proto.runtime import (
    CREDS_ENV,
    EXIT_NEEDS_OPERATOR,
    REPLICAS_ENV,
    NatsCredentials,
    NeedsOperator,
    credentials_for,
)

SERVICES = ("gpu-broker", "datasets", "trainer", "inference", "gateway")


@dataclass
class Child:
    """One supervised service process."""

    name: str
    port: int
    module: str = ""
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)
    pump: threading.Thread | None = None  # copies its output into its log

    def __post_init__(self) -> None:
        self.module = self.module or "digits_" + self.name.replace("-", "_")

    @property
    def health_url(self) -> str:
        """Where its readiness is polled: a service's `/ready` (its `/health` only says it is
        alive), the gateway's `/health` (200 once the whole system is up)."""
        path = "/health" if self.name == "gateway" else "/ready"
        return f"{self.base_url}{path}"

    @property
    def base_url(self) -> str:
        """Where the launcher (and an operator on this machine) reaches its HTTP app."""
        return f"http://{_loopback(self.name)}:{self.port}"


def _loopback(name: str) -> str:
    """Where the launcher reaches a child: its `DIGITS_<NAME>_HOST` unless that is a wildcard."""
    host = os.environ.get(f"DIGITS_{name.upper().replace('-', '_')}_HOST", "").strip()
    if host in ("", "0.0.0.0", "::", "[::]"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


SERVICES_FILE = "services.json"


class Launcher:
    """Runs the single-machine system: `digits run` / `make run`."""

    def __init__(
        self,
        settings: Settings,
        echo=print,
        modules: dict[str, str] | None = None,
        part: bool = False,
    ):
        self.settings = settings
        # `--only`: a node of a larger system (its bus and control services elsewhere): it
        # provisions nothing and leaves services.json to the system's own launcher.
        self.part = part
        self.echo = echo
        self.data_dir = Path(settings.data_path)
        self.logs = self.data_dir / "logs"
        self.bus: Bus | None = None  # the embedded nats-server(s), supervised
        self.nats_url = settings.nats_url
        # Embedded mode: the copies of every stream; checked now, before anything starts.
        self.replicas = 0 if settings.nats_url else settings.replicas
        self.creds_dir: Path | None = None  # embedded mode: one credentials file per service
        self.store_lock: IO[bytes] | None = None  # embedded mode: the NATS store is ours alone
        modules = modules or {name: "" for name in SERVICES}
        self.children = [
            Child(name, settings.port if name == "gateway" else self._port_for(name), module)
            for name, module in modules.items()
        ]
        self.stopping = False
        self.needs_operator: Child | None = None  # exited 78: the system stops, says why
        self._logs: dict[str, logfiles.RotatingLog] = {}
        self._waiting: dict[str, list[str]] = {}  # what a child's /ready said it waits for

    def _port_for(self, name: str) -> int:
        env = f"DIGITS_{name.upper().replace('-', '_')}_PORT"
        return int(os.environ.get(env) or nats.free_port())

    def run(self) -> int:
        """Start everything, print the URL once ready, supervise until signalled."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self._private_folders()
        try:
            try:
                if not self.nats_url:
                    self._start_nats()
                elif not self.part and (admin := self._external_admin()):
                    nats.provision(self.nats_url, admin)
            except NeedsOperator as e:  # a stream differs in what only an operator may change
                self.echo(f"NATS needs an operator: {e}", flush=True)
                return EXIT_NEEDS_OPERATOR
            for child in self.children:
                self._start(child)
            if not self._wait_ready():
                return self._refused() or 1
            if self.part:
                names = ", ".join(child.name for child in self.children)
                self.echo(f"DIGITS node ready: {names} on {self.nats_url}", flush=True)
            else:
                self._write_addresses()
                self.echo(self._ready_line(), flush=True)
            self._supervise()
            return self._refused()
        finally:
            self.shutdown()
            self.echo("DIGITS stopped.", flush=True)

    def _private_folders(self) -> None:
        """The data directory and all it holds are the owner's alone; the dataset root exists."""
        os.umask(0o077)
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # a data dir made before this was 0755
        self.logs.mkdir(parents=True, exist_ok=True)
        if not self.settings.data_roots:
            Path(self.settings.roots[0]).mkdir(parents=True, exist_ok=True)

    def _start_nats(self) -> None:
        """Embedded mode: credentials, the config(s) with the permission table, the server or
        the cluster, then provisioning with the replica count."""
        self.store_lock = self.store_lock or hold_store(self.data_dir)  # not during a restore
        size = self.settings.cluster
        self.bus = Bus(self.data_dir, size, self.settings.nats_port, self._log, self.echo)
        self.creds_dir = self.bus.creds_dir
        self.bus.start(self.replicas)
        self.nats_url = self.bus.url
        if size == 1:
            self.echo(f"nats-server (JetStream) on {self.nats_url}")
        else:
            nodes = ", ".join(f"{name} {url}" for name, url in self.bus.describe().items())
            self.echo(f"NATS cluster of {size} (JetStream, {self.replicas} replicas): {nodes}")

    def _external_admin(self) -> NatsCredentials | None:
        """External mode: a DIGITS_NATS_CREDS directory holding the admin's file provisions."""
        folder = os.environ.get(CREDS_ENV, "")
        if folder and (Path(folder) / f"{nats.ADMIN}.json").is_file():
            return credentials_for(nats.ADMIN, folder)
        return None

    def _ready_line(self) -> str:
        """The URL to open: a one-time sign-in link when the gateway left a token for it."""
        host = (
            "localhost"
            if self.settings.host in ("0.0.0.0", "::", "127.0.0.1")
            else self.settings.host
        )
        base = f"http://{host}:{self.settings.port}/"
        token_file = self.data_dir / "signin-token"
        try:
            token = token_file.read_text().strip()
        except FileNotFoundError:
            token = ""
        bus = ""
        if self.bus is not None and self.bus.size > 1:  # which nodes, as services.json has them
            bus = f"NATS: {', '.join(self.bus.describe())} (R{self.replicas}); "
        if not token:
            return f"DIGITS is ready: {base}  ({bus}logs: {self.logs})"
        token_file.unlink(missing_ok=True)  # printed once: the terminal is its only copy
        return f"DIGITS is ready: {base}login?token={token}  ({bus}logs: {self.logs})"

    def _write_addresses(self) -> None:
        """`<data dir>/services.json`: each service's HTTP app, for operators and scripts (the
        ports are free ones unless DIGITS_<SERVICE>_PORT fixes them)."""
        addresses = {child.name: child.base_url for child in self.children}
        addresses.update(self.bus.describe() if self.bus else {})
        target = self.data_dir / SERVICES_FILE
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(addresses, indent=2) + "\n")
        temporary.replace(target)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def _env(self, child: Child) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DIGITS_NATS_URL=self.nats_url,
            DIGITS_DATA_DIR=str(self.data_dir),
            DIGITS_DATA_ROOTS=os.pathsep.join(self.settings.roots),
            DIGITS_PORT=str(self.settings.port),
            PYTHONUNBUFFERED="1",
        )
        if self.bus is not None:  # an external NATS: the operator's DIGITS_NATS_REPLICAS stays
            env[REPLICAS_ENV] = str(self.replicas)
        # Each service gets its own NATS user only; a module the table does not know gets none.
        user = "digits-" + child.name
        if self.creds_dir is not None:
            env.pop(CREDS_ENV, None)
            if (self.creds_dir / f"{user}.json").is_file() and user != nats.ADMIN:
                env[CREDS_ENV] = str(self.creds_dir / f"{user}.json")
        # The trainer asks its own node's broker: both must agree on the node id.
        env.setdefault("DIGITS_NODE_ID", re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()))
        env[f"DIGITS_{child.name.upper().replace('-', '_')}_PORT"] = str(child.port)
        return env

    def _start(self, child: Child) -> None:
        piped = not self.settings.log_to_terminal  # to <name>.log, rotated by size
        child.proc = subprocess.Popen(
            [sys.executable, "-m", child.module],
            env=self._env(child),
            stdout=subprocess.PIPE if piped else None,
            stderr=subprocess.STDOUT if piped else None,
            start_new_session=True,  # signals come from us, in order, not from the terminal
            preexec_fn=die_with_parent_hook(signal.SIGTERM),  # no service outlives us
        )
        if piped and child.proc.stdout is not None:
            child.pump = logfiles.follow(child.proc.stdout, self._log(child.name), child.name)
        child.started_at = time.monotonic()

    def _log(self, name: str) -> logfiles.RotatingLog:
        """The rotating log of one process (shared by its restarts)."""
        if name not in self._logs:
            max_bytes = int(self.settings.log_max_mb * 1024 * 1024)
            path = self.logs / f"{name}.log"
            self._logs[name] = logfiles.RotatingLog(path, max_bytes, self.settings.log_backups)
        return self._logs[name]

    def _health(self, child: Child) -> tuple[bool, object]:
        """Whether the child is ready, and what its /health says it is busy with (the
        gateway's `rebuilding` progress: it changes while a long history is replayed)."""
        try:
            with urllib.request.urlopen(child.health_url, timeout=2) as r:
                return r.status == 200, None
        except urllib.error.HTTPError as e:  # 503 while not ready: its body says why
            try:
                body = json.loads(e.read() or b"{}")
            except ValueError:
                body = {}
            if not isinstance(body, dict):
                return False, None
            if isinstance(body.get("waiting_for"), list):
                self._waiting[child.name] = [str(w) for w in body["waiting_for"]]
            return False, body.get("rebuilding")
        except (urllib.error.URLError, OSError, ValueError):
            return False, None

    def _pending(self, pending: set[str]) -> str:
        """The children not ready, each with what its /ready last said it waits for."""
        return ", ".join(
            f"{name} ({'; '.join(self._waiting[name])})" if self._waiting.get(name) else name
            for name in sorted(pending)
        )

    def _wait_ready(self) -> bool:
        """Wait until every child is healthy; give up only after `ready_timeout` seconds in
        which none became ready and none reported progress (a long rebuild keeps going)."""
        last_change = time.monotonic()
        pending = {c.name for c in self.children}
        progress: dict[str, object] = {}
        while pending and not self.stopping:
            if time.monotonic() - last_change > self.settings.ready_timeout:
                self.echo(
                    f"not ready after {self.settings.ready_timeout:.0f} s without progress: "
                    f"{self._pending(pending)}; logs in {self.logs}"
                )
                return False
            if self.bus is not None:
                self.bus.restart_if_dead()
            for child in self.children:
                self._restart_if_dead(child)
                if child.name not in pending:
                    continue
                ok, busy = self._health(child)
                if ok:
                    pending.discard(child.name)
                    last_change = time.monotonic()
                elif busy and busy != progress.get(child.name):
                    if child.name not in progress:
                        self.echo(f"{child.name}: rebuilding its read model from the streams")
                    progress[child.name] = busy
                    last_change = time.monotonic()
            time.sleep(0.2)
        return not self.stopping

    def _restart_if_dead(self, child: Child) -> None:
        if self.stopping or child.proc is None or child.proc.poll() is None:
            return
        if child.proc.returncode == EXIT_NEEDS_OPERATOR:  # a restart would refuse the same way
            self.needs_operator, self.stopping = child, True
            return
        code, log = child.proc.returncode, self.logs / (child.name + ".log")
        if restart_due(
            child,
            lambda wait: self.echo(
                f"{child.name} exited with {code}; restarting in {wait:.0f} s (log: {log})"
            ),
        ):
            self._start(child)

    def _supervise(self) -> None:
        while not self.stopping:
            if self.bus is not None:  # first: services only reconnect to a running server
                self.bus.restart_if_dead()
            for child in self.children:
                self._restart_if_dead(child)
            time.sleep(0.2)

    def _refused(self) -> int:
        """0, or EXIT_NEEDS_OPERATOR after saying which service refused and its last line."""
        child = self.needs_operator
        if child is None:
            return 0
        if child.pump is not None:
            child.pump.join(timeout=5)  # its last line reaches the log
        reason = _last_line(self.logs / f"{child.name}.log") or "(see the output above)"
        self.echo(
            f"{child.name} needs an operator (exit {EXIT_NEEDS_OPERATOR}), not restarted: "
            f"{reason}\nStopping DIGITS; fix the cause, then start it again "
            f"(log: {self.logs / (child.name + '.log')})",
            flush=True,
        )
        return EXIT_NEEDS_OPERATOR

    def shutdown(self) -> None:
        """SIGTERM every service (gateway first), wait, kill stragglers, then stop NATS."""
        self.stopping = True
        procs = [c.proc for c in reversed(self.children) if c.proc and c.proc.poll() is None]
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.bus is not None:
            self.bus.stop()
        if self.store_lock is not None:
            self.store_lock.close()
            self.store_lock = None


def _last_line(log: Path) -> str:
    """The last non-empty line of a log (its tail only: logs can be large)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            lines = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""
