"""Confining user code: an argv turned into a bubblewrap sandbox with limits, and its end.

A confined child sees, read-only, the system's programs and libraries, the Python prefix, the
venv and the project's source folders, plus its own folder at `/job`; it may write only the
folder's `work/` (bound at `/job/work`). No network (its own namespace), no other process (its
own pid namespace), a scrubbed environment, uid/gid 65534, and rlimits on memory, CPU time,
processes and file size. Killing it kills its namespace's first process, which takes every
other process of the namespace with it (a `start_new_session` grandchild too).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import msgspec
import structlog

log = structlog.get_logger(__name__)

NOBODY = 65534
JOB = "/job"  # the child's folder, inside the sandbox
WORK = "work"  # the only part of it the child may write
SYSTEM = ("/usr", "/lib", "/lib64", "/bin")
# The only variables a confined child gets (no DIGITS_*, NATS*, credentials or tokens).
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "LD_LIBRARY_PATH", "PYTHONUNBUFFERED")
PASSED_PREFIXES = ("OMP_", "MXNET_", "CUDA_", "KMP_", "OPENBLAS_", "MKL_")


def passed_environment(env: dict[str, str]) -> dict[str, str]:
    """The part of `env` a confined child gets: an allow-list, not a deny-list."""
    return {k: v for k, v in env.items() if k in PASSED_ENV or k.startswith(PASSED_PREFIXES)}


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """rlimits for one child; 0 = not limited."""

    memory_mb: int = 0  # RLIMIT_AS (not applied with GPUs: CUDA maps their memory)
    cpu_seconds: int = 0  # RLIMIT_CPU
    processes: int = 0  # RLIMIT_NPROC (threads count too; per uid, shared by all sandboxes)
    file_mb: int = 0  # RLIMIT_FSIZE

    def prlimit(self) -> list[str]:
        """util-linux `prlimit` options for these limits."""
        options = {
            "--as": self.memory_mb * 1024 * 1024,
            "--cpu": self.cpu_seconds,
            "--nproc": self.processes,
            "--fsize": self.file_mb * 1024 * 1024,
        }
        return [f"{k}={v}" for k, v in options.items() if v > 0]


class SandboxUnavailable(Exception):
    """User code cannot be confined here (the message says why)."""


def source_folders() -> list[Path]:
    """The folders the venv's editable installs (`.pth` lines) put on `sys.path`."""
    found: list[Path] = []
    for entry in sys.path:
        for pth in sorted(Path(entry).glob("*.pth")) if entry and Path(entry).is_dir() else []:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                for line in pth.read_text().splitlines():
                    path = Path(line.strip())
                    if path.is_absolute() and path.is_dir() and path not in found:
                        found.append(path)
    return found


def readable_tree(data_dir: Path) -> list[Path]:
    """What a child may read besides its folder: Python, venv, source folders (real paths, none
    inside another); never a folder that holds the data directory (its listing would be the
    child's to read)."""
    data = data_dir.resolve()
    kept: list[Path] = []
    for path in [Path(sys.base_prefix), Path(sys.prefix), *source_folders()]:
        real = path.resolve()
        if not real.exists() or data.is_relative_to(real) or real.is_relative_to("/usr"):
            continue
        if not any(real.is_relative_to(k) for k in kept):
            kept = [k for k in kept if not k.is_relative_to(real)] + [real]
    return kept


def system_binds() -> list[str]:
    """/usr and the top-level folders of a merged-/usr system (symlinks there, as here)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in SYSTEM[1:]:
        path = Path(top)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), top]
        elif path.is_dir():
            args += ["--ro-bind", top, top]
    return args


class Confiner:
    """Builds confined argvs; `mode` "bwrap" (the default) or "off" (unconfined: dangerous)."""

    def __init__(self, mode: str, bwrap: str, data_dir: Path) -> None:
        self.mode = mode
        self.bwrap = bwrap
        self.data_dir = data_dir
        self.root = os.geteuid() == 0
        self.problem = "" if mode in ("bwrap", "off") else f"unknown sandbox mode {mode!r}"
        self._readable: list[Path] | None = None

    @property
    def on(self) -> bool:
        """Children are confined (the mode is bwrap and the probe found it working)."""
        return self.mode == "bwrap" and not self.problem

    def require(self) -> None:
        """Raise SandboxUnavailable unless user code may run (confined, or the admin opted out)."""
        if self.mode == "off":
            return
        if self.problem:
            raise SandboxUnavailable(
                f"user code is refused: the sandbox is unavailable ({self.problem})"
            )

    async def probe(self) -> bool:
        """Run `true` through the wrapper; on failure remember why. Logs one line either way."""
        if self.mode == "off":
            log.warning("sandbox_off: user code runs unconfined (DIGITS_TRAINER_SANDBOX=off)")
            return True
        if not self.problem:
            self.problem = await self._try_true()
        if self.problem:
            log.error(
                "sandbox_unavailable: custom networks are refused, standard networks train "
                "unconfined",
                reason=self.problem,
            )
        else:
            log.info("sandbox_ready", bwrap=self.bwrap, uid=NOBODY)
        return not self.problem

    async def _try_true(self) -> str:
        """Why `true` does not run through the wrapper ("" when it does)."""
        folder = self.data_dir / "trainer" / "sandbox-probe"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.prepare(folder)
            process = await asyncio.create_subprocess_exec(
                *self.argv(["/bin/true"], folder, {}, Limits()),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await asyncio.wait_for(process.communicate(), 30)
        except OSError as e:
            return f"{self.bwrap}: {e.strerror or e}"
        except TimeoutError:
            return f"{self.bwrap} did not answer in 30 s"
        if process.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines() or ["no message"]
            return f"{self.bwrap} exited with {process.returncode}: {lines[-1]}"
        return ""

    def prepare(self, folder: Path) -> Path:
        """Make `folder` the child's to read and `folder/work` (fresh) its to write: owned by
        65534 when we are root."""
        self.share(folder)
        work = folder / WORK
        remove_tree(work)
        work.mkdir(mode=0o700)
        if self.root:
            os.chown(work, NOBODY, NOBODY)
        return work

    def share(self, path: Path) -> None:
        """Let the child read a file or folder we created (as root: group 65534, g+r(x)); the
        data directory around it stays closed to everyone else."""
        if self.root:
            mode = os.stat(path, follow_symlinks=False).st_mode
            os.chown(path, -1, NOBODY, follow_symlinks=False)
            os.chmod(path, mode | (0o050 if path.is_dir() else 0o040))

    def argv(
        self,
        command: list[str],
        folder: Path,
        env: dict[str, str],
        limits: Limits,
        gpus: bool = False,
        info_fd: int | None = None,
    ) -> list[str]:
        """`command` run inside the sandbox, its folder at /job (cwd), `work/` writable."""
        if self._readable is None:
            self._readable = readable_tree(self.data_dir)
        args = [self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--die-with-parent", "--new-session"]
        if not self.root:  # unprivileged: a user namespace maps us to 65534
            args += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
        args += system_binds()
        # /tmp first: mounted after the binds, its tmpfs would hide a checkout or a venv under /tmp.
        args += ["--perms", "1777", "--tmpfs", "/tmp"]
        made: set[str] = set()
        for path in self._readable:
            for parent in reversed(path.parents):  # bwrap makes missing parents 0700
                if str(parent) != "/" and str(parent) not in made:
                    made.add(str(parent))
                    args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", str(path), str(path)]
        args += ["--proc", "/proc", "--dev", "/dev"]
        if gpus:
            for device in sorted(Path("/dev").glob("nvidia*")):
                args += ["--dev-bind", str(device), str(device)]
        args += ["--perms", "1777", "--tmpfs", "/dev/shm"]
        args += ["--perms", "0755", "--dir", JOB, "--ro-bind", str(folder), JOB]
        args += ["--bind", str(folder / WORK), f"{JOB}/{WORK}", "--chdir", JOB]
        if info_fd is not None:
            args += ["--info-fd", str(info_fd)]
        args += ["--clearenv"]
        passed = {**passed_environment(env), "HOME": "/tmp", "TMPDIR": "/tmp"}
        passed.setdefault("PATH", "/usr/bin:/bin")
        for key, value in passed.items():
            args += ["--setenv", key, value]
        args += ["--", "/usr/bin/prlimit", *limits.prlimit(), "--"]
        if self.root:  # drop to nobody after the mounts (bwrap cannot bind /root's 0700 parts)
            args += ["/usr/bin/setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}"]
            args += ["--clear-groups", "--no-new-privs"]
        return args + command


def remove_tree(path: Path) -> None:
    """Remove a folder a child may have written: never follows its symlinks (rmtree walks by
    file descriptor), a symlink itself is only unlinked."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        import shutil

        shutil.rmtree(path)
